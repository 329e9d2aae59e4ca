"""Archive query latency at a large archive: ``python -m bench.archive_query [--messages 1000000]``.

The store is FerretDB 1.24 on its PostgreSQL backend (``--backend postgresql``, the default) or
on SQLite (``--backend sqlite``, what the tests run), each on its own ``tests/services`` server:
MongoDB itself cannot be installed from the registries this machine reaches (no Debian package,
and the PyPI, npm and Maven "embedded MongoDB" packages download the server at run time).

Processes: the store (FerretDB, and for ``postgresql`` a PostgreSQL cluster of its own, so its
memory is measured alone); chat-server (``python -m server``, its own PostgreSQL and Redis),
which answers chat-archive's access question for every query and writes the staff audit rows;
chat-archive (``python -m archive``), started on the empty store: the indexes it creates at
start-up, as in production, are the ones the load then fills (this process creates none).
Kafka is not started: queries do not touch it, and the consumer's reconnect loop (back-off up
to 10 s) idles beside them.

Data: ``--messages`` archived messages in ``--rooms`` public rooms (default one per 500
messages; created in chat-server's PostgreSQL, so staff may read them) by ``--users`` authors
(default one per 50 messages) over ``--months`` months ending a day ago. Room sizes follow
1/(rank + 10): at a million in 2,000 rooms the largest holds about 2 % of all messages, the
median 185 messages, the smallest about 90. Each room has its own authors (5 to 300, drawn with
a skew so that some users post everywhere), its messages in time order with their ``seq``, ids
increasing with time as chat-server's are. Bodies are 6-15 words of ``bench.search_latency``'s
5,000-word skewed vocabulary, plus a planted rare word (``zanzibar``, one message in 10,000).
5 % are replies, 3 % edited (version 1), 0.5 % deleted (tombstoned: no text), 2 % carry an
image, 5 % reactions.
Each document is what chat-archive's consumer writes: a ``MessageRecord``'s Kafka record
(``to_archive``) through ``archive.storage.to_doc``, applied with ``ArchiveStore.apply`` (the
consumer's own write: one unordered ``insert_many`` per batch) in batches of 5,000, two in
flight, from this process straight into the collection chat-archive serves. Then ``VACUUM
ANALYZE`` on the table, as autovacuum would do after a bulk load.

Queries go through chat-archive's HTTP API with a staff user's real access token (registered on
chat-server, role set to ``staff``, logged in again), one at a time, each kind until
``--queries`` runs or ``--budget`` seconds (at least 3 runs), after one untimed warm-up:

- room history page: ``/rooms/{id}/history?before_seq=`` (50), room drawn by its size (busy
  rooms are read more), ``before_seq`` uniform in the room;
- room page by seq: ``/rooms/{id}/messages?cursor=`` (50), drawn the same way;
- a user's messages in a 30-day range: ``/users/{id}/messages?from=&to=`` (50), author drawn by
  activity;
- text in a room: ``/search?q=&room_id=`` (50, oldest first), a word of middling frequency;
- text in a user's messages: ``/search?q=&user_id=``;
- text in every readable room over 30 days: ``/search?q=zanzibar&scope=readable&from=&to=``;
- export of a room: ``/rooms/{id}/export`` (JSON lines), a room of median size.

The retention run (admin, deletes) is not measured. On PostgreSQL the kinds are measured twice:
first as FerretDB runs them (its btree indexes exist but cannot serve the ``@>`` filters it
sends, see ``tests/services/ferretdb.py``), then with GIN indexes on ``_jsonb->'room_id'`` and
``_jsonb->'author_id'`` added in PostgreSQL beside FerretDB's, and ``plan_cache_mode =
force_custom_plan`` on its database (FerretDB passes the field name as a statement parameter, so
a cached generic plan cannot match an expression index), FerretDB restarted on the same port to
take the setting. The report lists the indexes chat-archive's ``createIndexes`` became, the
table's size, FerretDB's RSS and PostgreSQL's memory (the sum of its processes' PSS, so shared
buffers count once) after each phase.

Prints the Markdown and writes ``bench/results/<date>-archive-query-<messages>[-sqlite].md`` and
``.json``. Bounded: generation and load are linear in ``--messages`` (a million loaded in 4.5
minutes, 3,700 messages/s, on the shared machine), each kind at most ``--budget`` seconds past
its third run or ``MAX_ERRORS`` failures; a million took about 20 minutes in all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from pymongo import AsyncMongoClient

from archive.storage import ArchiveStore, to_doc
from bench.search_latency import VOCABULARY, vocabulary
from chatcore.events import Attachment, MessageRecord, Reaction, iso
from chatcore.tokens import generate_keypair
from tests.services import PostgresService, RedisService
from tests.services.base import REPO_ROOT, free_port, port_open, wait_until
from tests.services.ferretdb import FerretService

RESULTS = REPO_ROOT / "bench" / "results"
DB = "chat_archive"
BATCH = 5000
PAGE = 50
PASSWORD = "bench archive password 1"
RARE = "zanzibar"
MAX_ERRORS = 3  # a kind that fails this often (e.g. past chat-archive's MongoDB timeout) stops there


def say(text: str) -> None:
    print(text, flush=True)


# --- the archive's contents -----------------------------------------------------------------


@dataclass
class Corpus:
    """Where every message goes: per room its size and authors; per message (in id order) its
    room, seq, author and time. Bodies and extras are made per batch from the message's id."""

    room_ids: list[int]
    sizes: list[int]  # messages per room, same order as room_ids
    rows: list[tuple[int, int, int, float]]  # (room index, seq, author, unix time), sorted by time
    author_weight: dict[int, int]  # messages per author
    start: datetime
    end: datetime


def plan(messages: int, room_ids: list[int], users: int, months: int, seed: int = 1) -> Corpus:
    rng = random.Random(seed)
    rooms = len(room_ids)
    weights = [1 / (rank + 10) for rank in range(rooms)]
    total = sum(weights)
    sizes = [max(1, int(messages * w / total)) for w in weights]
    sizes[0] += messages - sum(sizes)  # the rounding's remainder to the largest room
    # a user's activity across the whole archive: some users post in many rooms
    user_cum = list(accumulate(1 / (u + 5) for u in range(users)))
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    start = end - timedelta(days=30 * months)
    span = (end - start).total_seconds()
    t0 = start.timestamp()
    rows: list[tuple[int, int, int, float]] = []
    for r, size in enumerate(sizes):
        n_authors = min(300, 5 + size // 60)
        authors = list(dict.fromkeys(a + 1 for a in rng.choices(range(users), cum_weights=user_cum, k=n_authors)))
        author_cum = list(accumulate(1 / (i + 1) for i in range(len(authors))))
        times = sorted(rng.random() * span for _ in range(size))
        picks = rng.choices(authors, cum_weights=author_cum, k=size)
        rows.extend((r, seq + 1, picks[seq], t0 + times[seq]) for seq in range(size))
    rows.sort(key=lambda row: row[3])
    author_weight: dict[int, int] = {}
    for row in rows:
        author_weight[row[2]] = author_weight.get(row[2], 0) + 1
    return Corpus(room_ids, sizes, rows, author_weight, start, end)


def body_words(rng: random.Random, words: list[str], cum: list[float], n: int) -> str:
    return " ".join(rng.choices(words, cum_weights=cum, k=n))


def documents(corpus: Corpus, first: int, count: int, words: list[str], cum: list[float]) -> list[dict[str, Any]]:
    """Messages ``first`` .. ``first + count - 1`` (ids from 1, in time order) as stored documents."""
    out = []
    last_in_room: dict[int, int] = {}
    for mid in range(first, first + count):
        r, seq, author, ts = corpus.rows[mid - 1]
        rng = random.Random(mid)
        text = body_words(rng, words, cum, 6 + mid % 10)
        if mid % 10000 == 0:
            text += f" {RARE}"
        if mid % 1000 == 7:
            text += " quarterly report"
        created = datetime.fromtimestamp(ts, UTC)
        version, edited, deleted = 0, None, None
        if mid % 33 == 5:
            version, edited = 1, created + timedelta(minutes=rng.randint(1, 600))
        if mid % 200 == 11:
            version, deleted = version + 1, created + timedelta(hours=rng.randint(1, 48))
        files = (Attachment(id=uuid.UUID(int=mid).hex, name=f"photo-{mid}.jpg", mime="image/jpeg",
                            size=rng.randint(40_000, 3_000_000), width=1600, height=1200),) if mid % 50 == 3 else ()
        reactions = (Reaction("👍", rng.randint(1, 6), tuple(rng.sample(range(1, 200), 3))),) if mid % 20 == 9 else ()
        reply = last_in_room.get(r) if mid % 20 == 13 else None
        record = MessageRecord(
            id=mid, room_id=corpus.room_ids[r], seq=seq, author_id=author, author_kind="user",
            author_name=f"User {author}", body=text, created_at=created, client_id=uuid.UUID(int=mid << 1).hex,
            reply_to=reply, edited_at=edited, deleted_at=deleted, attachments=files, reactions=reactions)
        out.append(to_doc(record.to_archive(version)))
        last_in_room[r] = mid
    return out


async def load(store: ArchiveStore, corpus: Corpus) -> float:
    """Every message through ``ArchiveStore.apply``, ``BATCH`` at a time, two batches in flight."""
    words = vocabulary()
    cum = [((i + 1) / VOCABULARY) ** (1 / 3) for i in range(VOCABULARY)]
    total = len(corpus.rows)
    started = time.perf_counter()
    pending: set[asyncio.Task[Any]] = set()
    last_report = started
    for first in range(1, total + 1, BATCH):
        batch = documents(corpus, first, min(BATCH, total + 1 - first), words, cum)
        if len(pending) >= 2:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        pending.add(asyncio.create_task(store.apply(batch)))
        now = time.perf_counter()
        if now - last_report > 30:
            say(f"  loaded {first - 1:,} of {total:,} ({(first - 1) / (now - started):,.0f} messages/s)")
            last_report = now
    for task in asyncio.as_completed(pending):
        await task
    return time.perf_counter() - started


# --- processes ----------------------------------------------------------------------------------


def start_chat_server(pg: PostgresService, redis: RedisService, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": pg.dsn_for("chat"), "REDIS_URL": redis.url, "REDIS_PREFIX": "archq:",
           "JWT_PRIVATE_KEY_FILE": str(work / "jwt.pem"), "JWT_PUBLIC_KEY_FILE": str(work / "jwt.pub.pem"),
           "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "ARGON2_INSECURE_TEST_PARAMS": "true",
           "ACCESS_TOKEN_TTL_S": "14400", "AI_PROVIDER": "offline", "BUILD_WEB": "false", "LOG_LEVEL": "WARNING",
           "CHAT_HOST": "127.0.0.1", "CHAT_PORT": str(port), "CHAT_DATA_DIR": str(work / "chat")}
    with open(work / "chat-server.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server"], env=env, cwd=REPO_ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(lambda: port_open(port), 90, "chat-server", proc, work / "chat-server.log")
    return proc, f"http://127.0.0.1:{port}"


def start_archive(ferret: FerretService, chat_url: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "MONGO_URL": ferret.url,
           "MONGO_DB": DB, "ARCHIVE_PORT": str(port), "JWT_PUBLIC_KEY_FILE": str(work / "jwt.pub.pem"),
           "CHAT_SERVER_URL": chat_url, "LOG_LEVEL": "WARNING"}
    with open(work / "chat-archive.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "archive"], env=env, cwd=REPO_ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(lambda: port_open(port), 90, "chat-archive", proc, work / "chat-archive.log")
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def staff_token(http: aiohttp.ClientSession, chat_url: str, pg: PostgresService) -> str:
    """A staff user's access token, as the tests make one: register, set the role, log in again."""
    name = f"staff_{uuid.uuid4().hex[:6]}"
    async with http.post(chat_url + "/api/v1/auth/register", json={"username": name, "password": PASSWORD}) as r:
        assert r.status == 201, await r.text()
        uid = int((await r.json())["user"]["id"])
    conn = await asyncpg.connect(pg.dsn_for("chat"))
    try:
        await conn.execute("UPDATE users SET role = 'staff' WHERE id = $1", uid)
    finally:
        await conn.close()
    async with http.post(chat_url + "/api/v1/auth/login", json={"username": name, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["access_token"])


async def make_rooms(pg: PostgresService, rooms: int) -> list[int]:
    conn = await asyncpg.connect(pg.dsn_for("chat"))
    try:
        rows = await conn.fetch("INSERT INTO rooms (slug, name, kind) SELECT 'archq-' || i, 'archive bench ' || i,"
                                " 'public' FROM generate_series(1, $1) i RETURNING id", rooms)
        return [int(r["id"]) for r in rows]
    finally:
        await conn.close()


def memory(ferret: FerretService, store_pg: PostgresService | None) -> dict[str, float | None]:
    """FerretDB's RSS and the store's PostgreSQL (every process of its cluster: PSS, so shared
    buffers count once), in MiB."""
    out: dict[str, float | None] = {"ferretdb_rss_mib": None, "postgres_pss_mib": None}
    if ferret.pid is not None:
        out["ferretdb_rss_mib"] = round(psutil.Process(ferret.pid).memory_info().rss / 2**20, 1)
    if store_pg is not None:
        data = str(store_pg.data_dir)
        total = 0
        postmaster = next((p for p in psutil.process_iter(["cmdline"]) if data in " ".join(p.info["cmdline"] or [])), None)
        for p in [postmaster, *postmaster.children(recursive=True)] if postmaster is not None else []:
            try:
                total += p.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        out["postgres_pss_mib"] = round(total / 2**20, 1)
    return out


# --- queries ------------------------------------------------------------------------------------


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def middling_words(corpus_words: list[str]) -> list[str]:
    """Words in roughly 0.5-2 % of the messages (ranks 300-1000 of the skewed vocabulary)."""
    return corpus_words[300:1000]


def error_code(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return raw[:60].decode(errors="replace")


async def get(http: aiohttp.ClientSession, base: str, make: Callable[[], tuple[str, dict[str, Any]]],
              headers: dict[str, str]) -> tuple[str, int, bytes, float]:
    """One request of a kind: (path, status, body, milliseconds to the whole body)."""
    path, params = make()
    started = time.perf_counter()
    async with http.get(base + path, params=params, headers=headers) as r:
        raw = await r.read()
        return path, r.status, raw, (time.perf_counter() - started) * 1000


async def measure(http: aiohttp.ClientSession, archive_url: str, token: str, corpus: Corpus,
                  queries: int, budget_s: float, seed: int) -> dict[str, dict[str, Any]]:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    room_cum = list(accumulate(corpus.sizes))
    authors = list(corpus.author_weight)
    author_cum = list(accumulate(corpus.author_weight[a] for a in authors))
    words = middling_words(vocabulary())
    median_size = sorted(corpus.sizes)[len(corpus.sizes) // 2]
    median_rooms = [i for i, s in enumerate(corpus.sizes) if s == median_size]
    span_days = (corpus.end - corpus.start).days

    def room() -> tuple[int, int]:
        i = rng.choices(range(len(corpus.sizes)), cum_weights=room_cum)[0]
        return corpus.room_ids[i], corpus.sizes[i]

    def window() -> dict[str, str]:
        at = corpus.start + timedelta(days=rng.uniform(0, max(1, span_days - 30)))
        return {"from": iso(at) or "", "to": iso(at + timedelta(days=30)) or ""}

    def author() -> int:
        return int(rng.choices(authors, cum_weights=author_cum)[0])

    def history() -> tuple[str, dict[str, Any]]:
        rid, size = room()
        return f"/archive/v1/rooms/{rid}/history", {"before_seq": rng.randint(min(size, PAGE + 1), size + 1),
                                                     "limit": PAGE}

    def by_seq() -> tuple[str, dict[str, Any]]:
        rid, size = room()
        return f"/archive/v1/rooms/{rid}/messages", {"cursor": str(rng.randint(0, max(0, size - PAGE))), "limit": PAGE}

    def user_range() -> tuple[str, dict[str, Any]]:
        return f"/archive/v1/users/{author()}/messages", {**window(), "limit": PAGE}

    def text_room() -> tuple[str, dict[str, Any]]:
        return "/archive/v1/search", {"q": rng.choice(words), "room_id": room()[0], "limit": PAGE}

    def text_user() -> tuple[str, dict[str, Any]]:
        return "/archive/v1/search", {"q": rng.choice(words), "user_id": author(), "limit": PAGE}

    def text_readable() -> tuple[str, dict[str, Any]]:
        return "/archive/v1/search", {"q": RARE, "scope": "readable", **window(), "limit": PAGE}

    def export() -> tuple[str, dict[str, Any]]:
        return f"/archive/v1/rooms/{corpus.room_ids[rng.choice(median_rooms)]}/export", {}

    kinds = {
        "room history page (50 before a seq)": history,
        "room page by seq (50 after a cursor)": by_seq,
        "a user's messages, 30-day range (50)": user_range,
        "text in a room (50, oldest first)": text_room,
        "text in a user's messages (50)": text_user,
        f"export of a median room ({median_size:,} messages)": export,
        f"text in every readable room, 30 days (`{RARE}`)": text_readable,
    }
    out: dict[str, dict[str, Any]] = {}
    for label, make in kinds.items():
        samples: list[float] = []
        returned: list[int] = []
        errors: dict[str, int] = {}

        await get(http, archive_url, make, headers)  # warm-up, untimed
        deadline = time.perf_counter() + budget_s
        while len(samples) + sum(errors.values()) < queries and (len(samples) < 3 or time.perf_counter() < deadline):
            path, status, raw, ms = await get(http, archive_url, make, headers)
            if status != 200:
                key = f"{status} {error_code(raw)}"
                errors[key] = errors.get(key, 0) + 1
                if sum(errors.values()) >= MAX_ERRORS:
                    break
                continue
            samples.append(ms)
            returned.append(raw.count(b"\n") if path.endswith("/export") else len(json.loads(raw)["messages"]))
        row: dict[str, Any] = {"runs": len(samples), "errors": errors}
        if samples:
            row.update(p50=statistics.median(samples), p99=pct(samples, 99), max=max(samples),
                       returned=statistics.median(returned))
        out[label] = row
        say(f"  {label}: " + (f"p50 {row['p50']:,.1f} ms, p99 {row['p99']:,.1f} ms, max {row['max']:,.1f} ms, "
                               f"{row['runs']} runs" if samples else f"no answer: {errors}"))
    return out


# --- PostgreSQL side ----------------------------------------------------------------------------


async def table_of(conn: asyncpg.Connection) -> str:
    name = await conn.fetchval("SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'messages%'", DB)
    return f'"{DB}"."{name}"'


async def describe(store_pg: PostgresService) -> dict[str, Any]:
    conn = await asyncpg.connect(store_pg.dsn_for("ferretdb"))
    try:
        table = await table_of(conn)
        indexes = [r["indexdef"] for r in await conn.fetch(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename LIKE 'messages%' ORDER BY indexname", DB)]
        size = await conn.fetchval(f"SELECT pg_total_relation_size('{table}')")
        heap = await conn.fetchval(f"SELECT pg_relation_size('{table}')")
        plan_ = [r[0] for r in await conn.fetch(f"EXPLAIN SELECT _jsonb FROM {table} WHERE _jsonb->'room_id' @> '7'")]
        return {"table": table, "indexes": indexes, "total_mib": round(size / 2**20, 1), "heap_mib": round(heap / 2**20, 1),
                "room_filter_plan": plan_}
    finally:
        await conn.close()


async def add_gin(store_pg: PostgresService) -> float:
    conn = await asyncpg.connect(store_pg.dsn_for("ferretdb"))
    try:
        table = await table_of(conn)
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '256MB'")
        for field in ("room_id", "author_id"):
            await conn.execute(f"CREATE INDEX archq_{field}_gin ON {table} USING gin ((_jsonb->'{field}') jsonb_path_ops)",
                               timeout=1800)
        await conn.execute(f"ANALYZE {table}", timeout=600)
        await conn.execute("ALTER DATABASE ferretdb SET plan_cache_mode = force_custom_plan")
        return time.perf_counter() - started
    finally:
        await conn.close()


# --- the run ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-archq-"))
    generate_keypair(work / "jwt.pem", work / "jwt.pub.pem")
    chat_pg = PostgresService().start()
    redis = RedisService().start()
    store_pg: PostgresService | None = None
    if args.backend == "postgresql":
        store_pg = PostgresService().start()
        store_pg.psql("CREATE DATABASE ferretdb")
        ferret = FerretService(backend="postgresql", postgresql_url=f"postgres://postgres@127.0.0.1:{store_pg.port}/ferretdb")
    else:
        ferret = FerretService()
    ferret.start()
    chat_proc = archive_proc = None
    result: dict[str, Any] = {"messages": args.messages, "rooms": args.rooms, "users": args.users,
                              "months": args.months, "backend": args.backend, "queries": args.queries,
                              "budget_s": args.budget, "date": f"{datetime.now(UTC):%Y-%m-%d}",
                              "load_average_at_start": os.getloadavg(), "phases": {}}
    try:
        chat_pg.psql("CREATE DATABASE chat")
        chat_proc, chat_url = start_chat_server(chat_pg, redis, work)
        room_ids = await make_rooms(chat_pg, args.rooms)
        archive_proc, archive_url = start_archive(ferret, chat_url, work)
        say(f"archive_query: {args.messages:,} messages, {args.rooms:,} rooms, {args.users:,} users, FerretDB on "
            f"{args.backend}")
        started = time.perf_counter()
        corpus = plan(args.messages, room_ids, args.users, args.months)
        result["plan_s"] = time.perf_counter() - started
        result["largest_room"], result["median_room"] = max(corpus.sizes), sorted(corpus.sizes)[len(corpus.sizes) // 2]
        result["authors"] = len(corpus.author_weight)
        client: AsyncMongoClient = AsyncMongoClient(ferret.url, serverSelectionTimeoutMS=30000, timeoutMS=600_000)
        try:
            store = ArchiveStore(client, DB)
            result["load_s"] = await load(store, corpus)
            result["stored"] = await store.col.estimated_document_count()
        finally:
            await client.close()
        say(f"  loaded {result['stored']:,} in {result['load_s']:.0f} s ({args.messages / result['load_s']:,.0f}/s)")
        if store_pg is not None:
            started = time.perf_counter()
            conn = await asyncpg.connect(store_pg.dsn_for("ferretdb"))
            try:
                await conn.execute(f"VACUUM ANALYZE {await table_of(conn)}", timeout=1800)
            finally:
                await conn.close()
            result["vacuum_s"] = time.perf_counter() - started
            result["store"] = await describe(store_pg)
        result["memory_after_load"] = memory(ferret, store_pg)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
            token = await staff_token(http, chat_url, chat_pg)
            phase = "ferretdb" if store_pg is None else "ferretdb, its own indexes"
            say(f"## {phase}")
            result["phases"][phase] = {"kinds": await measure(http, archive_url, token, corpus, args.queries,
                                                             args.budget, seed=7),
                                       "memory": memory(ferret, store_pg)}
            if store_pg is not None and not args.no_gin:
                result["gin_build_s"] = await add_gin(store_pg)
                await asyncio.to_thread(ferret.restart)  # new sessions take plan_cache_mode
                result["store_with_gin"] = await describe(store_pg)
                phase = "ferretdb + GIN on room_id, author_id"
                say(f"## {phase}")
                result["phases"][phase] = {"kinds": await measure(http, archive_url, token, corpus, args.queries,
                                                                 args.budget, seed=7),
                                           "memory": memory(ferret, store_pg)}
        result["load_average_at_end"] = os.getloadavg()
        return result
    finally:
        stop(archive_proc)
        stop(chat_proc)
        ferret.cleanup()
        if store_pg is not None:
            store_pg.cleanup()
        redis.cleanup()
        chat_pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def report(res: dict[str, Any], command: str) -> str:
    n = res["messages"]
    lines = [f"# Archive query latency at {n:,} messages ({res['date']})", "",
             f"`{command}` (bench/archive_query.py): FerretDB 1.24 on {res['backend']}, chat-server and chat-archive "
             "as their own processes, every query through chat-archive's HTTP API with a staff token (chat-server "
             "asked about access and auditing each one), one at a time.", "",
             f"Archive: {res['stored']:,} documents in {res['rooms']:,} public rooms (largest {res['largest_room']:,}, "
             f"median {res['median_room']:,} messages) by {res['authors']:,} authors over {res['months']} months. "
             f"Loaded with `ArchiveStore.apply` (the consumer's write) in {res['load_s']:.0f} s "
             f"({n / res['load_s']:,.0f} messages/s, chat-archive's indexes in place)."
             + (f" `VACUUM ANALYZE` {res['vacuum_s']:.0f} s." if "vacuum_s" in res else ""), ""]
    if "store" in res:
        s = res["store"]
        lines += [f"FerretDB's table `{s['table']}`: {s['total_mib']:,} MiB with indexes ({s['heap_mib']:,} MiB heap). "
                  "chat-archive's `createIndexes` became these PostgreSQL indexes:", "",
                  *[f"- `{d}`" for d in s["indexes"]], "",
                  "FerretDB sends an equality filter as `_jsonb->'field' @> value`, which a btree index cannot serve; "
                  "PostgreSQL's plan for `{room_id: 7}`:", "", *[f"    {p}" for p in s["room_filter_plan"]], ""]
    if "gin_build_s" in res:
        g = res["store_with_gin"]
        lines += [f"Second phase: GIN indexes on `_jsonb->'room_id'` and `_jsonb->'author_id'` (`jsonb_path_ops`) "
                  f"built in {res['gin_build_s']:.0f} s (table with indexes now {g['total_mib']:,} MiB) and "
                  "`plan_cache_mode = force_custom_plan` on FerretDB's database; the same plan then:", "",
                  *[f"    {p}" for p in g["room_filter_plan"]], ""]
    phases = list(res["phases"])
    header = "| query | " + " | ".join(f"{p}: p50 / p99 / max ms (runs)" for p in phases) + " |"
    lines += [header, "|---|" + "---|" * len(phases)]
    for kind in res["phases"][phases[0]]["kinds"]:
        cells = []
        for p in phases:
            row = res["phases"][p]["kinds"][kind]
            if row["runs"]:
                cell = f"{row['p50']:,.0f} / {row['p99']:,.0f} / {row['max']:,.0f} ({row['runs']})"
            else:
                cell = "no answer"
            if row["errors"]:
                cell += f"; errors: {row['errors']}"
            cells.append(cell)
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "Memory (MiB): " + "; ".join(
        f"{label}: FerretDB RSS {m['ferretdb_rss_mib']}" + (f", PostgreSQL PSS {m['postgres_pss_mib']}"
                                                            if m["postgres_pss_mib"] is not None else "")
        for label, m in [("after the load", res["memory_after_load"]),
                         *[(f"after {p}", res["phases"][p]["memory"]) for p in phases]]) + ".", "",
              f"p99 over fewer than 100 runs is the second-largest or largest sample. Each kind ran until "
              f"{res['queries']} queries or {res['budget_s']:.0f} s (at least 3). The machine is shared with other "
              f"work (2 cores; load average {res['load_average_at_start'][0]:.1f} at the start, "
              f"{res['load_average_at_end'][0]:.1f} at the end): the figures are what it gave.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, help="default: one per 500 messages (at least 10)")
    parser.add_argument("--users", type=int, help="default: one per 50 messages (at least 100)")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--queries", type=int, default=50, help="timed queries per kind (at most)")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per kind past its third run")
    parser.add_argument("--no-gin", action="store_true", help="skip the second phase (GIN indexes)")
    args = parser.parse_args()
    args.rooms = args.rooms or max(10, args.messages // 500)
    args.users = args.users or max(100, args.messages // 50)
    command = "python -m bench.archive_query " + " ".join(sys.argv[1:])
    res = asyncio.run(run(args))
    text = report(res, command.strip())
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{res['date']}-archive-query-{args.messages}{'-sqlite' if args.backend == 'sqlite' else ''}"
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    say(text)


if __name__ == "__main__":
    main()
