"""The archive pipeline's figures: ``python -m bench.archive_pipeline``.

Starts its own PostgreSQL (``pgserver``), Kafka (KRaft, the test jars) and FerretDB (SQLite
backend: the MongoDB-protocol server the tests run; MongoDB itself is not installable here), the
same services as ``tests/archive``, and measures three things:

1. **Throughput**: ``--messages`` aged messages seeded into PostgreSQL; chat-server's relay
   (``ArchiveRelay``, in this process, default batch of 500) moves them to Kafka while
   chat-archive (``python -m archive``, its own process) stores them. Messages/s from the first
   pass until the archive holds them all, the relay's drain rate alone (PostgreSQL empty), and
   the CPU seconds of the relay (this process) and of chat-archive (``/proc``).
2. **Backlog drain after a Kafka outage**: Kafka stopped, the relay's passes fail (nothing is
   deleted), ``--backlog`` messages pile up, Kafka comes back; how long the relay takes to
   empty PostgreSQL and the archive to hold everything (a day of downtime is ``--backlog`` =
   a day's messages).
3. **Query latency**: ``--archive-size`` documents written straight into a fresh archive
   database (``ArchiveStore.apply``, batches of 5,000, over ``--rooms`` rooms and 1,000
   authors, a year of timestamps), then the queries chat-archive's API sends for room history
   (``/rooms/{id}/history``: 50 before a seq), a user's messages in a time range
   (``/users/{id}/messages``: a 30-day window), and text search in a room (``/search?room_id=``,
   case-insensitive literal ``$regex``, oldest first), ``--queries`` of each, p50/p99 in ms.
   FerretDB 1.x on SQLite pushes none of these filters down to an index: every query reads the
   whole collection, so its latency grows linearly with the archive (MongoDB serves them from the
   ``room_seq`` and ``author_time`` indexes); keep ``--archive-size`` small here.

Prints Markdown as each part is measured; ``--out`` also writes it (relative to the repository).
Every step is bounded. Defaults run in about three minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from pymongo import AsyncMongoClient

from archive.storage import ArchiveStore
from chatcore.tokens import generate_keypair
from server.relay.relay import ArchiveRelay, RelaySettings
from server.storage.db import create_pool, migrate
from tests.services import PostgresService
from tests.services.base import REPO_ROOT, free_port, port_open, wait_until
from tests.services.ferretdb import FerretService
from tests.services.kafka import KafkaService

CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (``/proc/<pid>/stat`` fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


async def seed(pool: asyncpg.Pool, n: int, rooms: int) -> None:
    """``n`` messages a day old in ``rooms`` public rooms, by one author, with one statement."""
    uid = await pool.fetchval("INSERT INTO users (username, display_name) VALUES ($1, 'Bench') RETURNING id",
                              f"bench_{uuid.uuid4().hex[:6]}")
    per_room = -(-n // rooms)
    room_ids = [await pool.fetchval("INSERT INTO rooms (slug, name, kind, last_seq) VALUES ($1, 'b', 'public', $2)"
                                    " RETURNING id", f"bench-{uuid.uuid4().hex[:8]}", per_room) for _ in range(rooms)]
    await pool.execute(
        "INSERT INTO messages (room_id, seq, author_id, author_kind, author_name, body, client_id, created_at)"
        " SELECT r.id, s, $2, 'user', 'Bench', 'archived message number ' || s || ' in a room of the benchmark',"
        "  'b' || r.id || '-' || s, now() - interval '1 day' + make_interval(secs => s / 1000.0)"
        " FROM unnest($1::bigint[]) AS r(id), generate_series(1, $3) s",
        room_ids, uid, per_room)


def spawn_archive(kafka: KafkaService, ferret: FerretService, db: str, topic: str, work: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    if not (work / "jwt.pub.pem").exists():
        generate_keypair(work / "jwt.pem", work / "jwt.pub.pem")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "MONGO_URL": ferret.url, "MONGO_DB": db,
           "ARCHIVE_TOPIC": topic, "ARCHIVE_GROUP_ID": f"g-{topic}", "ARCHIVE_PORT": str(port),
           "JWT_PUBLIC_KEY_FILE": str(work / "jwt.pub.pem"), "CHAT_SERVER_URL": f"http://127.0.0.1:{free_port()}"}
    log = open(work / f"archive-{port}.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "archive"], env=env, cwd=REPO_ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(lambda: port_open(port), 60, "chat-archive", proc)
    return proc


async def archived(ferret: FerretService, db: str) -> int:
    client: AsyncMongoClient = AsyncMongoClient(ferret.url, serverSelectionTimeoutMS=5000)
    try:
        return int(await client[db]["messages"].estimated_document_count())
    finally:
        await client.close()


async def until(check: Any, timeout: float, what: str) -> float:
    started = time.perf_counter()
    while not await check():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def pipeline(pg: PostgresService, kafka: KafkaService, ferret: FerretService, n: int, work: Path,
                   outage: bool, batch: int) -> dict[str, float]:
    """One run: seed ``n`` messages, relay and consume them; with ``outage`` Kafka is down while
    the backlog piles up and the relay has failed at least one pass."""
    name = f"b_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(pg.dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    pool = await create_pool(pg.dsn_for(name), timeout_s=60, min_size=1, max_size=4)
    topic, db = f"bench-{name}", f"bench_{name}"
    relay = ArchiveRelay(pool, kafka.bootstrap, RelaySettings(hot_retention_s=60, interval_s=0.05, send_timeout_s=10,
                                                             topic=topic, batch_size=batch))
    proc = spawn_archive(kafka, ferret, db, topic, work)
    try:
        await migrate(pool)
        if outage:
            kafka.stop()
        await seed(pool, n, rooms=max(1, n // 2000))
        if outage:
            try:
                await relay.run_once()
                raise AssertionError("a pass succeeded with Kafka down")
            except Exception:
                pass
            assert await pool.fetchval("SELECT count(*) FROM messages") == n  # nothing left PostgreSQL
            kafka.start()
        cpu_relay, cpu_archive = time.process_time(), cpu_s(proc.pid)
        started = time.perf_counter()
        task = asyncio.create_task(relay.run_forever())

        async def pg_empty() -> bool:
            return await pool.fetchval("SELECT count(*) FROM messages") == 0

        async def all_archived() -> bool:
            return await archived(ferret, db) >= n

        drained = await until(pg_empty, 600, "relay drain")
        relay_cpu = time.process_time() - cpu_relay
        done = await until(all_archived, 600, "archive") + drained
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return {"messages": n, "relay_s": drained, "end_to_end_s": done, "relay_rate": n / drained,
                "end_to_end_rate": n / done, "relay_cpu_s": relay_cpu, "archive_cpu_s": cpu_s(proc.pid) - cpu_archive,
                "started": started}
    finally:
        await relay.close()
        proc.terminate()
        proc.wait(15)
        await pool.close()


def docs(n: int, rooms: int, start_id: int) -> list[dict[str, Any]]:
    rng = random.Random(start_id)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    out = []
    for i in range(start_id, start_id + n):
        room = i % rooms + 1
        out.append({"_id": i, "room_id": room, "seq": i // rooms + 1, "author_id": rng.randint(1, 1000),
                    "author_kind": "user", "author_name": "u", "client_id": None, "reply_to": None, "meta": {},
                    "body": f"message {i} about {rng.choice(WORDS)} and {rng.choice(WORDS)}",
                    "created_at": t0 + timedelta(seconds=i * 31_536_000 / max(n, 1) / 1), "edited_at": None,
                    "deleted_at": None, "attachments": [], "reactions": [], "version": 0})
    return out


WORDS = ["budget", "invoice", "lunch", "release", "deploy", "report", "meeting", "holiday", "review", "ticket",
         "customer", "server", "design", "backlog", "coffee", "planning", "quarterly", "needle"]


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


async def query_latency(ferret: FerretService, size: int, rooms: int, queries: int) -> dict[str, Any]:
    client: AsyncMongoClient = AsyncMongoClient(ferret.url, serverSelectionTimeoutMS=10000, timeoutMS=120000)
    db = f"q_{uuid.uuid4().hex[:8]}"
    store = ArchiveStore(client, db)
    try:
        await store.setup(None)
        started = time.perf_counter()
        step = 5000
        for first in range(1, size + 1, step):
            batch = docs(min(step, size + 1 - first), rooms, first)
            # spread over a year in id order
            for d in batch:
                d["created_at"] = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=d["_id"] * 31_536_000 / size)
            await store.apply(batch)
        load_s = time.perf_counter() - started
        rng = random.Random(7)
        per_room = size // rooms
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        kinds = {
            "room history (50 before a seq)": lambda: store.find(
                {"room_id": rng.randint(1, rooms), "seq": {"$lt": rng.randint(51, per_room)}}, [("seq", -1)], 51),
            "user, 30-day range (50)": lambda: store.find(
                {"author_id": rng.randint(1, 1000), "created_at": {"$gte": (a := t0 + timedelta(days=rng.randint(0, 330))),
                                                                    "$lt": a + timedelta(days=30)}},
                [("created_at", 1), ("_id", 1)], 51),
            "text in a room (50, oldest first)": lambda: store.find(
                {**ArchiveStore.text_filter(rng.choice(WORDS).upper()), "room_id": rng.randint(1, rooms)},
                [("created_at", 1), ("_id", 1)], 51),
        }
        out: dict[str, Any] = {"size": size, "rooms": rooms, "load_s": load_s, "kinds": {}}
        for kind, run in kinds.items():
            samples = []
            for _ in range(queries):
                t = time.perf_counter()
                await run()
                samples.append((time.perf_counter() - t) * 1000)
            out["kinds"][kind] = {"p50": statistics.median(samples), "p99": pct(samples, 99)}
        return out
    finally:
        await client.drop_database(db)
        await client.close()


async def run(args: argparse.Namespace) -> str:
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-archive-{uuid.uuid4().hex[:6]}"
    work.mkdir(parents=True)
    pg = PostgresService().start()
    kafka = KafkaService().start()
    ferret = FerretService().start()
    lines = [f"# Archive pipeline ({datetime.now(UTC):%Y-%m-%d}, `python -m bench.archive_pipeline "
             f"--messages {args.messages} --backlog {args.backlog} --archive-size {args.archive_size} "
             f"--relay-batch {args.relay_batch}`)", ""]
    def section(new: list[str]) -> None:
        lines.extend(new)
        print("\n".join(new), flush=True)

    try:
        if args.messages:
            t = await pipeline(pg, kafka, ferret, args.messages, work, outage=False, batch=args.relay_batch)
            section(["## Throughput PostgreSQL -> Kafka -> archive", "",
                      "| messages | relay drain | end to end | relay CPU | chat-archive CPU |", "|---|---|---|---|---|",
                      f"| {t['messages']:,} | {t['relay_rate']:,.0f} msg/s ({t['relay_s']:.1f} s) | "
                      f"{t['end_to_end_rate']:,.0f} msg/s ({t['end_to_end_s']:.1f} s) | {t['relay_cpu_s']:.1f} s "
                      f"({t['relay_cpu_s'] / t['relay_s'] * 100:.0f} % of a core while draining) | "
                      f"{t['archive_cpu_s']:.1f} s ({t['archive_cpu_s'] / t['end_to_end_s'] * 100:.0f} %) |", ""])
        if args.backlog:
            b = await pipeline(pg, kafka, ferret, args.backlog, work, outage=True, batch=args.relay_batch)
            section(["## Backlog drain after a Kafka outage", "",
                      "| backlog | relay drain (PostgreSQL empty) | archive complete | a day of downtime at 100 msg/s |",
                      "|---|---|---|---|",
                      f"| {b['messages']:,} | {b['relay_rate']:,.0f} msg/s ({b['relay_s']:.1f} s) | "
                      f"{b['end_to_end_rate']:,.0f} msg/s ({b['end_to_end_s']:.1f} s) | "
                      f"{8_640_000 / b['end_to_end_rate'] / 60:.0f} min to drain 8.64 M |", ""])
        if args.archive_size:
            q = await query_latency(ferret, args.archive_size, args.rooms, args.queries)
            section([f"## Query latency at {q['size']:,} archived messages ({q['rooms']} rooms; loaded in "
                     f"{q['load_s']:.0f} s; {args.queries} queries a kind)", "", "| query | p50 | p99 |", "|---|---|---|",
                     *[f"| {k} | {v['p50']:.1f} ms | {v['p99']:.1f} ms |" for k, v in q["kinds"].items()], ""])
    finally:
        ferret.cleanup()
        kafka.cleanup()
        pg.cleanup()
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="throughput run size (0: skip)")
    parser.add_argument("--backlog", type=int, default=20_000, help="backlog after the Kafka outage (0: skip)")
    parser.add_argument("--archive-size", type=int, default=20_000, help="archive size for query latency (0: skip)")
    parser.add_argument("--rooms", type=int, default=100, help="rooms of the query-latency archive")
    parser.add_argument("--queries", type=int, default=20, help="timed queries per kind")
    parser.add_argument("--relay-batch", type=int, default=RelaySettings.batch_size, help="messages per relay pass")
    parser.add_argument("--out", help="also write the Markdown here (relative to the repository)")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.out:
        (REPO_ROOT / args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()
