"""Moves messages older than the hot retention from PostgreSQL to Kafka.

One leader at a time across all nodes: each pass runs under a PostgreSQL advisory lock. A pass
selects a batch of aged messages (oldest first, per room in seq order) with each row's
``version`` (schema/0021: bumped by every change of the row), produces them with an idempotent
producer (``acks=all``, keyed by room id so a room keeps its order in one partition), waits for
every ack, and only then, in one transaction, locks those rows and deletes the ones whose
version is still the one sent. A row changed meanwhile (edited, deleted, reacted to) stays and
is sent again, newer, on the next pass; so do the later rows of its room in the batch, so the
hot part of a room stays a suffix of its seqs and ``archived_upto_seq`` stays exact. The
deleted rows leave a line in ``archived_messages`` (who may still delete them). Then the pass
sends the outbox (``archive_outbox``: tombstones of archived messages deleted since) the same
way and deletes the acknowledged outbox rows.

A crash anywhere before the delete means the batch is sent again; chat-archive keeps the record
with the highest version per message, so a redelivery is counted as a duplicate and changes
nothing. The sends of a batch are queued at once and awaited together (one ack wait per batch,
not per message).

Bounds. A broker that is down, or hung (the process alive, its connections open, nothing
answering), must not stop the relay:

- Every Kafka call (start, send, the acks, stop) is bounded by ``send_timeout_s`` through
  ``_bounded``, which returns at the bound even when the call does not end on cancellation
  (``asyncio.wait_for`` waits for the cancelled call to finish, and aiokafka 0.14's
  ``AIOKafkaClient.close()``, the last step of ``producer.stop()``, awaits its metadata task under
  ``suppress(CancelledError)``: a cancellation landing there is eaten and ``stop()`` goes on to
  wait for its connections to close). A call that outlives its grace is left behind and reaped
  when it ends. After a failure the producer is stopped and rebuilt on the next pass; with the
  broker hung its idempotent sender retries the batches forever, so ``stop()`` (which flushes
  first) never ends by itself: past its bound the producer's sender task, batches and client
  are cut (``_cut``), else every failed pass would leave a producer behind, retrying.
- The PostgreSQL connection of a pass is given back to the pool only with the leader lock
  released; when the unlock did not run or did not answer (the lock statement timed out after the
  server took the lock, say) the connection is terminated instead, so its session ends and
  PostgreSQL frees the lock: a returned connection never keeps the next pass out.
- ``run_forever`` gives each pass ``pass_timeout_s`` (default ``6 * send_timeout_s + 30``). A pass
  past it is abandoned: cancelled, its connection terminated (client side and with
  ``pg_terminate_backend``, which frees the lock even if the backend is busy) and released, its
  producer stopped in the background, ``abandoned_passes`` and
  ``chat_relay_passes_abandoned_total`` bumped, a warning logged; the loop backs off and starts a
  fresh pass. An abandoned pass deleted nothing it had not seen acknowledged (its delete is one
  transaction, rolled back if cut), so its batch simply goes again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import Counter

from chatcore.events import ARCHIVE_TOPIC, MessageRecord
from chatcore.faults import FaultPause

from ..storage.messages import MSG_COLS, to_record

log = logging.getLogger(__name__)

T = TypeVar("T")

RELAY_LOCK = 7_240_002  # advisory lock id of the relay leader
PRODUCER_CLIENT_ID = "chat-relay"  # names the relay's connections in the broker's logs and quotas
BACKOFF_MAX_S = 30.0  # longest wait between passes while Kafka or PostgreSQL is down
GRACE_S = 1.0  # how long a call or a pass past its bound gets to end on cancellation before it is left behind


class PassAbandoned(TimeoutError):
    """A pass outlived ``pass_timeout_s`` and was abandoned."""


@dataclass(frozen=True)
class RelaySettings:
    hot_retention_s: float
    batch_size: int = 500
    interval_s: float = 5.0
    send_timeout_s: float = 10.0
    topic: str = ARCHIVE_TOPIC
    fault_pause: str | None = None  # FAULT_PAUSE_AT, for fault tests only (chatcore/faults.py)
    pass_timeout_s: float | None = None  # None: 6 * send_timeout_s + 30 (module docstring, "Bounds")

    @property
    def pass_deadline_s(self) -> float:
        """A pass's bound: its Kafka calls (start, queue, acks for the batch and for the outbox,
        a stop: six send timeouts) plus room for its PostgreSQL statements."""
        return self.pass_timeout_s if self.pass_timeout_s is not None else 6 * self.send_timeout_s + 30


class ArchiveRelay:
    def __init__(self, pool: asyncpg.Pool, bootstrap_servers: str, settings: RelaySettings,
                 counter: Counter | None = None, abandoned_counter: Counter | None = None) -> None:
        self.pool = pool
        self.counter = counter  # chat_relay_records_total{kind}
        self.abandoned_counter = abandoned_counter  # chat_relay_passes_abandoned_total
        self.bootstrap = bootstrap_servers
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self.archived_total = 0
        self.failed_passes = 0
        self.abandoned_passes = 0  # passes cut at pass_timeout_s
        self.kept_changed = 0  # rows changed between send and delete: kept, sent again next pass
        self.outbox_sent = 0
        self._pause = FaultPause(settings.fault_pause)
        self._pass_conn: asyncpg.Connection | None = None  # the running pass's connection, for _abandon
        self._stray: set[asyncio.Future[Any]] = set()  # calls and passes left behind past their bound

    async def _bounded(self, aw: Awaitable[T], timeout: float, what: str) -> T:
        """``aw`` bounded by ``timeout`` seconds, truly: at the bound it is cancelled and given
        GRACE_S to end, then left behind (module docstring, "Bounds"). Also cancelled and left
        when the caller is. Raises TimeoutError at the bound, even if ``aw`` ended in its grace."""
        fut = asyncio.ensure_future(aw)
        try:
            done, _ = await asyncio.wait({fut}, timeout=timeout)
            if done:
                return fut.result()
            fut.cancel()
            await asyncio.wait({fut}, timeout=GRACE_S)
        except BaseException:
            fut.cancel()
            self._leave(fut, what, warn=False)  # the caller was cancelled: no grace was given
            raise
        self._leave(fut, what)
        raise TimeoutError(f"{what} took over {timeout:g} s")

    def _leave(self, fut: asyncio.Future[Any], what: str, warn: bool = True) -> None:
        """Keep a call that did not end when asked to, and reap it (and its outcome) when it does."""
        def reap(f: asyncio.Future[Any]) -> None:
            self._stray.discard(f)
            if not f.cancelled() and f.exception() is not None:
                log.debug("relay: %s ended after it was left: %r", what, f.exception())

        if fut.done():
            reap(fut)
            return
        if warn:
            log.warning("relay: %s did not end within %.0f s of its cancellation; left behind", what, GRACE_S)
        self._stray.add(fut)
        fut.add_done_callback(reap)

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id=PRODUCER_CLIENT_ID,
                enable_idempotence=True,
                acks="all",
                linger_ms=5,
                request_timeout_ms=int(self.settings.send_timeout_s * 1000),
                retry_backoff_ms=200,
            )
            try:
                await self._bounded(producer.start(), self.settings.send_timeout_s, "producer start")
            except asyncio.CancelledError:
                self._discard(producer)
                raise
            except BaseException:
                await self._close(producer)
                raise
            if self._producer is not None:  # a pass abandoned meanwhile built one: keep that one
                self._discard(producer)
            else:
                self._producer = producer
        return self._producer

    async def _close(self, producer: AIOKafkaProducer | None) -> None:
        """Stop a producer, bounded; past the bound cut it (module docstring, "Bounds")."""
        if producer is None:
            return
        try:
            await self._bounded(producer.stop(), self.settings.send_timeout_s, "producer stop")
        except Exception as exc:
            log.warning("relay: producer did not stop cleanly (%s); cutting it", type(exc).__name__)
            await self._cut(producer)

    async def _cut(self, producer: AIOKafkaProducer) -> None:
        # aiokafka has no public way to drop a producer whose batches a broker holds: cancel its
        # sender task (its cancellation handler awaits the in-flight requests, so cancel it until
        # it ends, each wait bounded), fail its batches and close its client (metadata task,
        # connections)
        sender = getattr(getattr(producer, "_sender", None), "sender_task", None)
        for _ in range(3):
            if sender is None or sender.done():
                break
            sender.cancel()
            await asyncio.wait({sender}, timeout=GRACE_S / 3)
        if sender is not None and not sender.done():
            self._leave(sender, "producer sender")
        accumulator = getattr(producer, "_message_accumulator", None)
        if accumulator is not None:  # the flush stop() began ends, and so does whatever awaits an ack
            _fail_batches(accumulator)
        try:
            await self._bounded(producer.client.close(), GRACE_S, "producer client close")
        except Exception as exc:
            log.warning("relay: producer client did not close: %s", type(exc).__name__)

    def _discard(self, producer: AIOKafkaProducer) -> None:
        """Close a producer in the background (nothing waits for it; kept until it ends)."""
        task = asyncio.ensure_future(self._close(producer))
        self._stray.add(task)
        task.add_done_callback(self._stray.discard)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        await self._close(producer)
        if self._stray:
            for fut in list(self._stray):
                fut.cancel()
            await asyncio.wait(list(self._stray), timeout=GRACE_S)

    async def run_once(self) -> int:
        """One leader-guarded pass; returns how many messages were archived.

        The connection goes back to the pool only after an unlock that answered; otherwise it is
        terminated, so its session (and the leader lock it may hold) ends with it."""
        conn = await self.pool.acquire(timeout=self.settings.send_timeout_s)  # a drained pool fails the pass
        self._pass_conn = conn
        clean = False
        try:
            locked = await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK)
            if not locked:
                clean = True
                return 0
            try:
                return await self._pass(conn)
            finally:
                clean = await conn.fetchval("SELECT pg_advisory_unlock($1)", RELAY_LOCK) is True
        finally:
            if self._pass_conn is conn:
                self._pass_conn = None
            if not clean:
                conn.terminate()
            await self.pool.release(conn)

    async def _pass(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            f"SELECT {MSG_COLS}, version FROM messages WHERE created_at < now() - make_interval(secs => $1)"
            " ORDER BY created_at, room_id, seq LIMIT $2",
            self.settings.hot_retention_s, self.settings.batch_size,
        )
        moved = 0
        if rows:
            records = [(to_record(r), r["version"]) for r in rows]
            await self._send([(m.room_id, m.to_archive(version)) for m, version in records])
            await self._pause.reach("relay.sent", {"ids": [m.id for m, _ in records]})
            moved = await self._delete_unchanged(conn, records)
        await self._relay_outbox(conn)
        return moved

    async def _send(self, items: list[tuple[int, dict[str, object]]]) -> None:
        """Produce every record and wait for all the acks, bounded; on any failure the producer
        is dropped (rebuilt next pass) and the caller deletes nothing."""
        producer: AIOKafkaProducer | None = None
        try:
            producer = await self._ensure_producer()
            topic = self.settings.topic

            futures: list[asyncio.Future[object]] = []

            async def queue_all() -> None:
                # send() only queues (it waits when the producer's buffer is full); the acks come later
                for room, rec in items:
                    fut = await producer.send(topic, value=orjson.dumps(rec), key=str(room).encode())
                    fut.add_done_callback(_retrieve)  # a send cut short leaves acks nobody awaits
                    futures.append(fut)

            await self._bounded(queue_all(), self.settings.send_timeout_s, "send")
            await self._bounded(asyncio.gather(*futures), self.settings.send_timeout_s, "acks")
        except asyncio.CancelledError:
            raise  # abandoned (_abandon took the producer) or stopping (close() stops it)
        except BaseException:
            if producer is not None and producer is self._producer:  # not one a later pass built
                self._producer = None
                await self._close(producer)
            raise

    async def _delete_unchanged(self, conn: asyncpg.Connection, records: list[tuple[MessageRecord, int]]) -> int:
        """Delete the sent rows still at the version sent; a changed row and the later rows of
        its room stay for the next pass. Returns how many rows left PostgreSQL."""
        async with conn.transaction():
            now = {r["id"]: r["version"] for r in await conn.fetch(
                "SELECT id, version FROM messages WHERE id = ANY($1::bigint[]) FOR UPDATE",
                [m.id for m, _ in records])}
            stop: dict[int, int] = {}  # room -> lowest seq that must stay hot
            for m, version in records:
                if now.get(m.id, version) != version and m.seq < stop.get(m.room_id, m.seq + 1):
                    stop[m.room_id] = m.seq
            gone = [m for m, version in records if m.id in now and m.seq < stop.get(m.room_id, m.seq + 1)]
            await conn.execute(
                "WITH d AS (DELETE FROM messages WHERE id = ANY($1::bigint[])"
                "  RETURNING id, room_id, seq, author_id, author_kind, author_name, created_at, edited_at, deleted_at)"
                " INSERT INTO archived_messages (id, room_id, seq, author_id, author_kind, author_name, created_at,"
                "  edited_at, deleted_at) SELECT * FROM d ON CONFLICT (id) DO NOTHING",
                [m.id for m in gone])
            await conn.execute(
                "UPDATE rooms r SET archived_upto_seq = greatest(r.archived_upto_seq, v.upto)"
                " FROM (SELECT unnest($1::bigint[]) AS room_id, unnest($2::bigint[]) AS upto) v WHERE r.id = v.room_id",
                *_max_seq_per_room(gone),
            )
        self.archived_total += len(gone)
        self.kept_changed += len(records) - len(gone)
        self._count("message", len(records))
        self._count("kept_changed", len(records) - len(gone))
        if len(gone) < len(records):
            log.info("relay: %d of %d sent messages changed meanwhile; they go again", len(records) - len(gone),
                     len(records))
        log.info("relay: archived %d messages", len(gone))
        return len(gone)

    async def _relay_outbox(self, conn: asyncpg.Connection) -> None:
        """Send the changes of archived messages (tombstones), oldest first, then delete them.
        Outbox rows never change, so deleting exactly the ids sent is safe."""
        rows = await conn.fetch("SELECT id, room_id, record FROM archive_outbox ORDER BY id LIMIT $1",
                                self.settings.batch_size)
        if not rows:
            return
        await self._send([(r["room_id"], r["record"]) for r in rows])
        await conn.execute("DELETE FROM archive_outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self.outbox_sent += len(rows)
        self._count("tombstone", len(rows))

    def _count(self, kind: str, n: int) -> None:
        if self.counter is not None and n:
            self.counter.labels(kind).inc(n)

    async def run_forever(self) -> None:
        """Passes back to back while there is a backlog, then every ``interval_s``.

        A failed pass (Kafka or PostgreSQL unreachable) is logged in one line and retried with
        capped exponential backoff, so an outage neither spins nor floods the log; the batch of
        a failed pass was not deleted and goes again. A pass past ``pass_deadline_s`` is
        abandoned (``_abandon``) and counts as failed.
        """
        delay = self.settings.interval_s
        while True:
            try:
                moved = await self._run_pass()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed_passes += 1
                delay = min(max(delay * 2, 0.5), BACKOFF_MAX_S)
                log.warning("relay: pass failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                continue
            delay = self.settings.interval_s
            if moved < self.settings.batch_size:
                await asyncio.sleep(self.settings.interval_s)

    async def _run_pass(self) -> int:
        """``run_once`` under the pass deadline, in a task of its own so that a pass that does not
        end when cancelled cannot hold this loop (asyncio.wait returns at its timeout whatever the
        task does; asyncio.wait_for would wait for the cancelled pass to end)."""
        deadline = self.settings.pass_deadline_s
        task = asyncio.ensure_future(self.run_once())
        try:
            done, _ = await asyncio.wait({task}, timeout=deadline)
        except asyncio.CancelledError:
            await self._abandon(task, None)
            raise
        if done:
            return task.result()
        await self._abandon(task, f"pass still running after {deadline:g} s")
        raise PassAbandoned(f"pass abandoned after {deadline:g} s")

    async def _abandon(self, task: asyncio.Future[int], why: str | None) -> None:
        """Cut a pass (``why`` None: the relay is stopping): cancel it; if it does not end, end
        its PostgreSQL session (the leader lock goes with it) and give its connection back to
        the pool. An abandoned pass's producer is stopped in the background and rebuilt."""
        if why is not None:
            producer, self._producer = self._producer, None
            if producer is not None:
                self._discard(producer)
        task.cancel()
        await asyncio.wait({task}, timeout=GRACE_S)
        if task.done():
            if not task.cancelled():
                task.exception()  # retrieved: a pass cut at its deadline fails with PassAbandoned
        else:
            self._leave(task, "abandoned pass")
        conn, self._pass_conn = self._pass_conn, None  # still set only if the pass did not end
        if conn is not None:
            pid = conn.get_server_pid()
            conn.terminate()
            try:
                await self._bounded(self.pool.release(conn), GRACE_S, "release of the abandoned connection")
            except Exception as exc:
                log.warning("relay: abandoned pass's connection not released: %s", type(exc).__name__)
            if why is not None:
                await self._terminate_backend(pid)
        if why is not None:
            self.abandoned_passes += 1
            if self.abandoned_counter is not None:
                self.abandoned_counter.inc()
            log.warning("relay: %s; abandoned (its connection %s, producer rebuilt)", why,
                        "terminated" if conn is not None else "released by the pass")

    async def _terminate_backend(self, pid: int) -> None:
        """End the session server side too: a terminated client socket is noticed by a backend only
        when it next reads, not while a statement of the pass still runs and holds the lock."""
        try:
            await self._bounded(self.pool.execute("SELECT pg_terminate_backend($1)", pid),
                                self.settings.send_timeout_s, "pg_terminate_backend")
        except Exception as exc:
            log.warning("relay: could not end the abandoned pass's session %d: %s", pid, type(exc).__name__)


def _fail_batches(accumulator: Any) -> None:
    """Fail every batch of a dropped producer's accumulator (aiokafka's ``fail_all``), quietly."""
    batches = [b for queued in accumulator._batches.values() for b in queued]
    # a batch sent and re-queued for a retry keeps a callback that removes it from the in-flight
    # set when it fails: put it back there first, or that callback raises KeyError
    accumulator._pending_batches.update(batches)
    batches = list(accumulator._pending_batches)
    accumulator.fail_all(KafkaTimeoutError("producer dropped by the relay"))
    for batch in batches:  # nobody awaits these any more
        _retrieve(batch.future)
        _retrieve(batch._drain_waiter)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Mark a failed future's exception as seen (asyncio logs unseen ones when they are collected)."""
    if fut.done() and not fut.cancelled():
        fut.exception()


def _max_seq_per_room(records: list[MessageRecord]) -> tuple[list[int], list[int]]:
    upto: dict[int, int] = {}
    for m in records:
        upto[m.room_id] = max(upto.get(m.room_id, 0), m.seq)
    return list(upto), list(upto.values())
