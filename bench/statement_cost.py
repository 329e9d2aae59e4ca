"""PostgreSQL's CPU per send statement, by batch size: what a batch costs once and per row.

chat-server stores sends with one statement per batch (``server/storage/batcher.py``). How much
of PostgreSQL's work is per statement (the transaction, its commit and WAL flush, the executor's
start on every table and index the statement touches) and how much per row decides what group
commit saves, and why the CPU per message rises when messages come spread out (each batch then
holds a few rows). This issues the batch statement with 1, 4, 20 and 40 rows, and the
single-message ``INSERT_MEMBER``, back to back from one connection for a few seconds each, on a
fresh embedded PostgreSQL with chat-server's schema (its migrations), and reads the backend's
CPU time from ``/proc``. ``--no-flush``: the same with ``synchronous_commit = off`` in the session
(not a setting chat-server uses: it shows what the commit's WAL flush costs in CPU).

Run: ``.venv/bin/python -m bench.statement_cost`` (~50 s); prints a Markdown table and writes it to
``bench/results/<date>-statement-cost[-no-flush].md``. Pin it
(``taskset -c 1``) to keep it off a core something else measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from server.embedded import EmbeddedServices
from server.storage.batcher import INSERT_BATCH
from server.storage.db import create_pool, migrate
from server.storage.messages import INSERT_MEMBER

ROOMS = 40  # one author per room, as the persist scenario's 40 clients
FIRST_ID = 100
TICKS = os.sysconf("SC_CLK_TCK")
RESULTS = Path(__file__).parent / "results"


def backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def _seed(url: str) -> None:
    pool = await create_pool(url, timeout_s=30, min_size=1, max_size=1)
    try:
        await migrate(pool)
        last = FIRST_ID + ROOMS - 1
        async with pool.acquire() as c:
            await c.execute("INSERT INTO users (id, username, display_name, role, kind) OVERRIDING SYSTEM VALUE"
                            " SELECT g, 'u' || g, 'u' || g, 'user', 'human' FROM generate_series($1::int, $2) g",
                            FIRST_ID, last)
            await c.execute("INSERT INTO rooms (id, slug, name, kind, created_by) OVERRIDING SYSTEM VALUE"
                            " SELECT g, 'r' || g, 'r' || g, 'private', g FROM generate_series($1::int, $2) g",
                            FIRST_ID, last)
            await c.execute("INSERT INTO room_members (room_id, user_id, role)"
                            " SELECT g, g, 'member' FROM generate_series($1::int, $2) g", FIRST_ID, last)
            await c.execute("ANALYZE")
    finally:
        await pool.close()


async def _statement(conn: asyncpg.Connection, rows: int | None, n: int) -> None:
    """One send statement: the batch one with ``rows`` rows, or ``INSERT_MEMBER`` (None)."""
    rooms = [FIRST_ID + (n + i) % ROOMS for i in range(rows or 1)]
    if rows is None:
        await conn.fetchrow(INSERT_MEMBER, rooms[0], rooms[0], "user", "bench", "hello there", uuid.uuid4().hex,
                            None, "[]")
    else:
        await conn.fetch(INSERT_BATCH, rooms, rooms, ["user"] * rows, ["bench"] * rows, ["hello there"] * rows,
                         [uuid.uuid4().hex for _ in rooms], [None] * rows, ["[]"] * rows)


async def _size(conn: asyncpg.Connection, pid: int, rows: int | None, seconds: float) -> dict[str, float | str]:
    """``rows``' statement back to back for ``seconds``: the backend's CPU per statement and row."""
    n = 0
    cpu0, t0 = backend_cpu_s(pid), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        await _statement(conn, rows, n)
        n += 1
    cpu = backend_cpu_s(pid) - cpu0
    return {"statement": "INSERT_MEMBER" if rows is None else f"batch of {rows}", "statements": n,
            "us_per_statement": 1e6 * cpu / n, "us_per_row": 1e6 * cpu / (n * (rows or 1))}


async def measure(sizes: list[int | None], seconds: float, flush: bool, rounds: int) -> list[dict[str, float | str]]:
    with tempfile.TemporaryDirectory(prefix="stmt-cost-") as tmp:
        services = EmbeddedServices(Path(tmp))
        url = services.start_postgres()
        try:
            await _seed(url)
            conn = await asyncpg.connect(url, timeout=10)
            try:
                if not flush:
                    await conn.execute("SET synchronous_commit = off")
                pid = await conn.fetchval("SELECT pg_backend_pid()")
                # rounds interleave the sizes, so a noisy second hits all
                return [await _size(conn, pid, rows, seconds) for _ in range(rounds) for rows in sizes]
            finally:
                await conn.close()
        finally:
            services.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.statement_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0, help="per size and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-flush", action="store_true", help="synchronous_commit = off in the session")
    a = p.parse_args()
    sizes: list[int | None] = [1, 4, 20, 40, None]
    results = asyncio.run(measure(sizes, a.seconds, not a.no_flush, a.rounds))
    lines = [f"# PostgreSQL's CPU per send statement, {datetime.now(UTC).date()}", "",
             f"Command: `.venv/bin/python -m bench.statement_cost{' --no-flush' if a.no_flush else ''}`"
             f" ({'synchronous_commit off' if a.no_flush else 'default commit'}; {a.rounds} rounds of {a.seconds:g} s"
             " per size; the median round)", "",
             "| statement | µs per statement | µs per row |", "|---|---:|---:|"]
    for label in dict.fromkeys(str(r["statement"]) for r in results):
        mine = sorted((r for r in results if r["statement"] == label), key=lambda r: float(r["us_per_statement"]))
        mid = mine[len(mine) // 2]
        lines.append(f"| {label} | {float(mid['us_per_statement']):,.0f} | {float(mid['us_per_row']):,.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = RESULTS / f"{datetime.now(UTC).date()}-statement-cost{'-no-flush' if a.no_flush else ''}.md"
    out.write_text(text)
    print(f"wrote {out}")

if __name__ == "__main__":
    main()
