"""Search latency over a million messages: ``python -m bench.search_latency``.

Starts a throw-away PostgreSQL from the ``pgserver`` wheel (the embedded default's and the
tests' PostgreSQL 16), applies the schema, and seeds ``--messages`` messages (default 1,000,000)
in ``--rooms`` public rooms with one ``COPY`` (the search index is dropped during the load and
built once afterwards, as a restore would; the stored vectors are computed by the load). Bodies
are 6-15 words drawn from a 5,000-word vocabulary with a skewed (cubic) distribution, so the
first word is in about half of all messages; one message in 10,000 carries a rare word, one in 1,000 the phrase
"quarterly report", one in 100 the word "report" alone.

Then it times the search statement chat-server runs (``server.storage.search.search_hot``: match,
rank, order, headline of the page; 20 hits a page) for each query kind, over every room (a user
who may read all of them) or one room, and prints p50/p99 and the GIN index's size as Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta

import asyncpg

from server.storage import search as sdb
from server.storage.db import create_pool, migrate
from tests.services import PostgresService
from tests.services.base import REPO_ROOT

VOCABULARY = 5000

def vocabulary() -> list[str]:
    """5,000 made-up words of 4-8 letters (from md5, so every run has the same ones)."""
    return [hashlib.md5(str(i).encode()).hexdigest().translate(DIGITS_TO_LETTERS)[:4 + i % 5] for i in range(VOCABULARY)]


DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def bodies(count: int, seed: int = 1) -> list[str]:
    """Message bodies: 6-15 words each, word i drawn with weight ~ 1/i^(2/3) (a cubic of a
    uniform draw: the first word is in about half of the messages), plus the planted words."""
    words = vocabulary()
    rng = random.Random(seed)
    cum = [((i + 1) / VOCABULARY) ** (1 / 3) for i in range(VOCABULARY)]
    lengths = [6 + s % 10 for s in range(count)]
    drawn = iter(rng.choices(words, cum_weights=cum, k=sum(lengths)))
    out = []
    for s, n in enumerate(lengths):
        body = " ".join(next(drawn) for _ in range(n))
        if s % 10000 == 0:
            body += " zanzibar"
        if s % 1000 == 7:
            body += " quarterly report"
        if s % 100 == 3:
            body += " report"
        out.append(body)
    return out


async def seed(pool: asyncpg.Pool, messages: int, rooms: int) -> tuple[list[int], float, float]:
    async with pool.acquire() as conn:
        uid = await conn.fetchval("INSERT INTO users (username, display_name) VALUES ('bench', 'Bench') RETURNING id")
        room_ids = [r["id"] for r in await conn.fetch(
            "INSERT INTO rooms (slug, name, kind, created_by) SELECT 'bench-' || i, 'bench ' || i, 'public', $1"
            " FROM generate_series(1, $2) i RETURNING id", uid, rooms)]
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.execute("DROP INDEX messages_search")
        started = time.perf_counter()
        now = datetime.now(UTC)
        records = ((room_ids[s % rooms], s // rooms + 1, uid, "user", "Bench", body, now - timedelta(seconds=messages - s))
                   for s, body in enumerate(bodies(messages)))
        await conn.copy_records_to_table(
            "messages", records=records, timeout=900,
            columns=["room_id", "seq", "author_id", "author_kind", "author_name", "body", "created_at"])
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("CREATE INDEX messages_search ON messages USING gin (search_doc)", timeout=900)
        indexed = time.perf_counter() - started
        await conn.execute("UPDATE rooms r SET last_seq = (SELECT max(seq) FROM messages m WHERE m.room_id = r.id)")
        await conn.execute("VACUUM ANALYZE messages", timeout=900)
    return room_ids, loaded, indexed


async def timed(pool: asyncpg.Pool, q: str, room_ids: list[int], budget_s: float, runs: int) -> tuple[list[float], int]:
    await sdb.search_hot(pool, q, room_ids, author_id=None, since=None, before=None, after=None, limit=21)  # warm
    samples: list[float] = []
    hits = 0
    deadline = time.perf_counter() + budget_s
    while len(samples) < runs and (len(samples) < 5 or time.perf_counter() < deadline):
        t = time.perf_counter()
        found = await sdb.search_hot(pool, q, room_ids, author_id=None, since=None, before=None, after=None, limit=21)
        samples.append((time.perf_counter() - t) * 1000)
        hits = len(found)
    return samples, hits


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(messages: int, rooms: int, runs: int, budget_s: float) -> str:
    pg = PostgresService().start()
    try:
        pool = await create_pool(pg.dsn, timeout_s=900, min_size=1, max_size=2)
        await migrate(pool)
        room_ids, loaded, indexed = await seed(pool, messages, rooms)
        common = vocabulary()[0]
        share = await pool.fetchval(
            "SELECT count(*)::float / $2 FROM messages WHERE search_doc @@ to_tsquery('chat_search', $1)", common, messages)
        gin = await pool.fetchval("SELECT pg_relation_size('messages_search')")
        table = await pool.fetchval("SELECT pg_total_relation_size('messages')")
        kinds = [("common word", common, room_ids), ("rare word", "zanzibar", room_ids),
                 ("phrase", '"quarterly report"', room_ids), ("two words, one excluded", "report -quarterly", room_ids),
                 ("common word, one room", common, room_ids[:1]), ("rare word, one room", "zanzibar", room_ids[:1])]
        lines = [f"# Search latency, {date.today().isoformat()}", "",
                 f"`python -m bench.search_latency --messages {messages} --rooms {rooms}` on PostgreSQL 16 (pgserver "
                 "wheel, test settings: fsync off), one connection, 20 hits a page.", "",
                 f"Seeded {messages:,} messages in {rooms:,} rooms: bulk insert {loaded:.1f} s, GIN index build "
                 f"{indexed:.1f} s. GIN index `messages_search`: {gin / 2**20:.1f} MiB; `messages` with its indexes "
                 f"and TOAST: {table / 2**20:.1f} MiB. The common word is in {share:.0%} of the messages.", "",
                 "| query | rooms searched | hits on the page | runs | p50 ms | p99 ms |", "|---|---|---|---|---|---|"]
        for label, q, ids in kinds:
            samples, hits = await timed(pool, q, ids, budget_s, runs)
            lines.append(f"| {label} (`{q}`) | {len(ids)} | {min(hits, 20)} | {len(samples)} | "
                         f"{statistics.median(samples):.1f} | {pct(samples, 99):.1f} |")
        await pool.close()
        return "\n".join(lines) + "\n"
    finally:
        pg.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per query kind (at most)")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds per query kind (at least 5 runs)")
    parser.add_argument("--out", help="also write the Markdown here (relative to the repository)")
    args = parser.parse_args()
    report = asyncio.run(run(args.messages, args.rooms, args.runs, args.budget))
    print(report)
    if args.out:
        (REPO_ROOT / args.out).write_text(report)


if __name__ == "__main__":
    main()
