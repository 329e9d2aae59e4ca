"""The soak: ``python -m bench.soak [--duration 30m] [--users 24]``, not part of the test run.

Two chat-server processes on one real PostgreSQL and one real Redis (``tests/services``), users
spread over both nodes, every user a real Socket.IO client that keeps sending (resending each
message with its ``client_id`` until acked, as the web app does), reading history, syncing and
typing in four shared rooms. At 40 % of the run Redis is killed (SIGKILL) and started again on
the same port 5 s later; at 60 % node b is stopped (SIGTERM) and started again under the same
node id and port, its clients reconnecting by themselves.

Every 5 s each node's RSS, open file descriptors (psutil) and live asyncio tasks
(``chat_asyncio_tasks`` from ``/metrics``) are sampled. The verdict compares node a (never
restarted) at the end of the run with its plateau before the faults (20-35 % of the run), and
node b's second life with its first plateau: "flat" means RSS within +15 % (plus 16 MiB for
allocator noise), open fds within +8, tasks within +20. After the load stops, every acked
message must be in PostgreSQL once, under the id its ack named: zero lost acked messages.

The report goes to ``bench/results/<date>-soak-<duration>.md`` (and ``.json``), its duration in
the name and the title. A clock-bound scenario: it takes ``--duration`` whatever the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
import socketio

from chatcore.tokens import generate_keypair
from tests.services import PostgresService, RedisService
from tests.services.base import REPO_ROOT, free_port, port_open, wait_until

RESULTS = REPO_ROOT / "bench" / "results"
ROOMS = 4
SAMPLE_EVERY_S = 5.0
REDIS_OUTAGE_S = 5.0
RSS_GROWTH = 0.15
RSS_SLACK_MIB = 16
FD_SLACK = 8
TASK_SLACK = 20


def say(text: str) -> None:
    print(text, flush=True)


def parse_duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


@dataclass
class Node:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    life: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "server"], env=self.env, cwd=REPO_ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: port_open(self.port), 60, self.name, self.proc, self.log)
        self.life += 1

    def stop(self) -> float:
        """SIGTERM; returns how long the node took to exit."""
        assert self.proc is not None
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        return time.monotonic() - t


@dataclass
class Tally:
    acked: dict[str, tuple[int, int]] = field(default_factory=dict)  # client_id -> (author, message id)
    resends: int = 0
    histories: int = 0
    syncs: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def register(http: aiohttp.ClientSession, url: str, name: str) -> dict[str, Any]:
    async with http.post(url + "/api/v1/auth/register", json={"username": name, "password": "soak password 1"}) as r:
        assert r.status == 201, await r.text()
        return dict(await r.json())


async def user_loop(user: dict[str, Any], url: str, rooms: list[int], tally: Tally, stop: asyncio.Event,
                    rng: random.Random) -> None:
    token = user["access_token"]
    uid = int(user["user"]["id"])
    sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=2.0,
                               reconnection_attempts=0)
    await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=20)
    cursors = dict.fromkeys(rooms, 0)
    try:
        while not stop.is_set():
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            if not sio.connected:
                continue
            room = rng.choice(rooms)
            pick = rng.random()
            try:
                if pick < 0.7:
                    client_id = uuid.uuid4().hex
                    msg = await send_until_acked(sio, room, f"soak {client_id[:8]}", client_id, tally, stop)
                    if msg is not None:
                        tally.acked[client_id] = (uid, int(msg["id"]))
                        cursors[room] = max(cursors[room], int(msg["seq"]))
                elif pick < 0.8:
                    await sio.call("history", {"room_id": room, "limit": 50}, timeout=10)
                    tally.histories += 1
                elif pick < 0.9:
                    ack = await sio.call("sync", {"cursors": {str(r): c for r, c in cursors.items()}}, timeout=10)
                    if ack.get("ok"):
                        for key, entry in ack["rooms"].items():
                            if entry.get("last_seq") is not None:
                                cursors[int(key)] = int(entry["last_seq"])
                    tally.syncs += 1
                else:
                    await sio.call("typing", {"room_id": room, "typing": True}, timeout=10)
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError,
                    socketio.exceptions.DisconnectedError) as exc:
                tally.error(type(exc).__name__)
    finally:
        await sio.disconnect()


async def send_until_acked(sio: socketio.AsyncClient, room: int, body: str, client_id: str, tally: Tally,
                           stop: asyncio.Event) -> dict[str, Any] | None:
    first = True
    while True:
        if not first:
            tally.resends += 1
        first = False
        while not sio.connected:
            if stop.is_set():
                return None  # never acked: not counted as sent
            await asyncio.sleep(0.1)
        try:
            ack = await sio.call("message:send", {"room_id": room, "body": body, "client_id": client_id}, timeout=5)
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError,
                socketio.exceptions.DisconnectedError):
            continue
        if ack.get("ok"):
            return dict(ack["message"])
        tally.error(ack["error"]["code"])
        await asyncio.sleep(0.5)


async def tasks_of(http: aiohttp.ClientSession, node: Node) -> int | None:
    try:
        async with http.get(node.url + "/metrics") as r:
            for line in (await r.text()).splitlines():
                if line.startswith("chat_asyncio_tasks "):
                    return int(float(line.split()[-1]))
    except (aiohttp.ClientError, TimeoutError):
        return None
    return None


async def sampler(nodes: list[Node], started: float, samples: list[dict[str, Any]], stop: asyncio.Event,
                  http: aiohttp.ClientSession) -> None:
    while not stop.is_set():
        for node in nodes:
            if node.proc is None or node.proc.poll() is not None:
                continue
            try:
                p = psutil.Process(node.proc.pid)
                rss, fds = p.memory_info().rss, p.num_fds()
            except psutil.Error:
                continue
            samples.append({"t": round(time.monotonic() - started, 1), "node": node.name, "life": node.life,
                            "rss_mib": round(rss / 2**20, 1), "fds": fds, "tasks": await tasks_of(http, node)})
        try:
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)
        except TimeoutError:
            pass


def plateau(samples: list[dict[str, Any]], node: str, life: int, t0: float, t1: float) -> dict[str, float]:
    """Median of each figure over [t0, t1) for one life of a node."""
    rows = [s for s in samples if s["node"] == node and s["life"] == life and t0 <= s["t"] < t1]
    if not rows:
        return {}

    def med(key: str) -> float:
        values = sorted(float(s[key]) for s in rows if s[key] is not None)
        return values[len(values) // 2] if values else float("nan")

    return {"rss_mib": med("rss_mib"), "fds": med("fds"), "tasks": med("tasks"), "samples": len(rows)}


def flat(before: dict[str, float], after: dict[str, float]) -> bool:
    return (after["rss_mib"] <= before["rss_mib"] * (1 + RSS_GROWTH) + RSS_SLACK_MIB
            and after["fds"] <= before["fds"] + FD_SLACK and after["tasks"] <= before["tasks"] + TASK_SLACK)


async def run(duration_s: float, users: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="chat-soak-"))
    pg, redis = PostgresService().start(), RedisService().start()
    nodes: list[Node] = []
    events: list[str] = []
    try:
        conn = await asyncpg.connect(pg.dsn)
        await conn.execute("CREATE DATABASE soak")
        await conn.close()
        generate_keypair(tmp / "jwt.pem", tmp / "jwt.pub.pem")
        common = {**os.environ, "DATABASE_URL": pg.dsn_for("soak"), "REDIS_URL": redis.url, "REDIS_PREFIX": "soak:",
                  "JWT_PRIVATE_KEY_FILE": str(tmp / "jwt.pem"), "JWT_PUBLIC_KEY_FILE": str(tmp / "jwt.pub.pem"),
                  "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "ARGON2_INSECURE_TEST_PARAMS": "true",
                  "RATE_LIMIT_REGISTER_PER_MIN": "100000", "RATE_LIMIT_MESSAGES_PER_10S": "100000",
                  "RATE_LIMIT_EVENTS_PER_10S": "100000", "ACCESS_TOKEN_TTL_S": str(int(duration_s) + 3600),
                  "AI_PROVIDER": "offline", "BUILD_WEB": "false", "LOG_LEVEL": "WARNING", "CHAT_HOST": "127.0.0.1"}
        for name in ("node-a", "node-b"):
            port = free_port()
            node = Node(name, port, {**common, "CHAT_PORT": str(port), "CHAT_NODE_ID": name,
                                     "CHAT_DATA_DIR": str(tmp / name)}, tmp / f"{name}.log")
            node.start()
            nodes.append(node)
        a, b = nodes
        tally = Tally()
        samples: list[dict[str, Any]] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            people = [await register(http, a.url, f"soak{i}") for i in range(users)]
            rooms = []
            for i in range(ROOMS):
                async with http.post(a.url + "/api/v1/rooms", json={"name": f"soak {i}", "kind": "public",
                                                                    "members": [p["user"]["id"] for p in people[1:]]},
                                     headers={"Authorization": f"Bearer {people[0]['access_token']}"}) as r:
                    assert r.status == 201, await r.text()
                    rooms.append(int((await r.json())["room"]["id"]))
            stop, stop_sampling = asyncio.Event(), asyncio.Event()
            started = time.monotonic()
            sampling = asyncio.create_task(sampler(nodes, started, samples, stop_sampling, http))
            loops = [asyncio.create_task(user_loop(p, nodes[i % 2].url, rooms, tally, stop, random.Random(i)))
                     for i, p in enumerate(people)]

            async def at(fraction: float) -> None:
                await asyncio.sleep(max(0.0, started + duration_s * fraction - time.monotonic()))

            await at(0.4)
            redis.kill()
            events.append(f"{time.monotonic() - started:.0f} s: Redis killed (SIGKILL)")
            await asyncio.sleep(REDIS_OUTAGE_S)
            await asyncio.to_thread(redis.start)
            events.append(f"{time.monotonic() - started:.0f} s: Redis back (same port, empty) after {REDIS_OUTAGE_S:.0f} s")
            await at(0.6)
            took = await asyncio.to_thread(b.stop)
            events.append(f"{time.monotonic() - started:.0f} s: node-b stopped (SIGTERM), exited in {took:.1f} s")
            await asyncio.to_thread(b.start)
            events.append(f"{time.monotonic() - started:.0f} s: node-b started again (same id and port)")
            await at(1.0)
            stop.set()
            await asyncio.gather(*loops, return_exceptions=True)
            stop_sampling.set()
            await sampling

        conn = await asyncpg.connect(pg.dsn_for("soak"))
        try:
            rows = await conn.fetch("SELECT id, author_id, client_id FROM messages WHERE client_id IS NOT NULL")
        finally:
            await conn.close()
        stored = {r["client_id"]: (int(r["author_id"]), int(r["id"])) for r in rows}
        lost = [cid for cid, got in tally.acked.items() if stored.get(cid) != got]
        d = duration_s
        verdicts = {
            "node-a": (plateau(samples, "node-a", 1, 0.2 * d, 0.35 * d), plateau(samples, "node-a", 1, 0.9 * d, 1.01 * d)),
            "node-b": (plateau(samples, "node-b", 1, 0.2 * d, 0.35 * d), plateau(samples, "node-b", 2, 0.9 * d, 1.01 * d)),
        }
        return {
            "duration_s": duration_s, "users": users, "rooms": ROOMS, "events": events,
            "acked": len(tally.acked), "stored_rows": len(rows), "lost_acked": len(lost), "resends": tally.resends,
            "histories": tally.histories, "syncs": tally.syncs, "client_errors": tally.errors,
            "plateaus": {n: {"before": v[0], "end": v[1], "flat": bool(v[0] and v[1] and flat(*v))}
                         for n, v in verdicts.items()},
            "samples": samples,
        }
    finally:
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
                node.proc.wait(30)
        redis.cleanup()
        pg.cleanup()


def report(res: dict[str, Any], label: str) -> str:
    lines = [f"# Soak, {label} ({res['duration_s'] / 60:.1f} minutes)", "",
             f"`python -m bench.soak --duration {label}`: two chat-server nodes, {res['users']} users in "
             f"{res['rooms']} rooms (sends with resends until acked, history, sync, typing), one Redis restart and "
             "one node restart in the middle (bench/soak.py).", "",
             "## Faults", "", *[f"- {e}" for e in res["events"]], "",
             "## Messages", "",
             f"- acked: {res['acked']}; rows in PostgreSQL: {res['stored_rows']}; **lost acked: {res['lost_acked']}**",
             f"- resends (same client_id): {res['resends']}; history reads: {res['histories']}; syncs: {res['syncs']}",
             f"- client-side timeouts and refusals: {res['client_errors'] or 'none'}", "",
             "## Resources (medians: plateau before the faults, 20-35 % of the run; end, last 10 %)", "",
             "| node | RSS MiB before → end | open fds before → end | asyncio tasks before → end | flat |",
             "|---|---|---|---|---|"]
    for name, p in res["plateaus"].items():
        b, e = p["before"], p["end"]
        if not b or not e:
            lines.append(f"| {name} | no samples | | | no |")
            continue
        lines.append(f"| {name}{' (2nd life at the end)' if name == 'node-b' else ''} | {b['rss_mib']} → {e['rss_mib']} | "
                     f"{b['fds']:.0f} → {e['fds']:.0f} | {b['tasks']:.0f} → {e['tasks']:.0f} | "
                     f"{'yes' if p['flat'] else '**no**'} |")
    lines += ["", f"Flat: RSS within +{RSS_GROWTH:.0%} + {RSS_SLACK_MIB} MiB, fds within +{FD_SLACK}, tasks within "
              f"+{TASK_SLACK}. Raw samples (every {SAMPLE_EVERY_S:.0f} s) in the .json next to this file.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", default="30m", help="e.g. 30m (the default), 4m, 300s")
    parser.add_argument("--users", type=int, default=24)
    args = parser.parse_args()
    duration_s = parse_duration(args.duration)
    say(f"soak: {args.duration} with {args.users} users on two nodes")
    res = asyncio.run(run(duration_s, args.users))
    text = report(res, args.duration)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-soak-{args.duration}"
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1))
    say(text)
    ok = res["lost_acked"] == 0 and all(p["flat"] for p in res["plateaus"].values())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
