"""A load generator that speaks Engine.IO 4 / Socket.IO 5 over raw WebSockets (aiohttp).

Modes (one JSON result line on stdout):
  fanout   N clients join one room; S of them send at a fixed total rate; every receiver
           records the latency from the send timestamp in the body to receipt.
  persist  K clients send ``message:send`` back to back and time each ack.
  idle     N clients connect and join, print ``ready``, hold until stdin closes.

Only loopback targets; bounded by ``--duration``; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

import aiohttp

BODY_TS = re.compile(r'"body":"t(\d+)')


class SioClient:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None, samples: array | None) -> None:  # type: ignore[type-arg]
        self.session, self.url, self.token, self.samples = session, url, token, samples
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.next_ack = 1
        self.received = 0
        self.reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        ws_url = self.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await self.session.ws_connect(ws_url, max_msg_size=0, compress=0)
        opened = await self.ws.receive_str()
        assert opened.startswith("0"), opened
        await self.ws.send_str("40" + (json.dumps({"token": self.token}) if self.token else ""))
        while True:
            msg = await self.ws.receive_str()
            if msg.startswith("40"):
                break
            if msg.startswith("44"):
                raise RuntimeError(f"connect refused: {msg}")
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        ws, samples = self.ws, self.samples
        async for msg in ws:
            data = msg.data
            if not isinstance(data, str):
                continue
            if data == "2":
                await ws.send_str("3")
            elif data.startswith('42["message"'):
                self.received += 1
                if samples is not None:
                    m = BODY_TS.search(data)
                    if m:
                        samples.append(time.time_ns() - int(m.group(1)))
            elif data.startswith("43"):
                i = 2
                while data[i].isdigit():
                    i += 1
                fut = self.acks.pop(int(data[2:i]), None)
                if fut is not None and not fut.done():
                    fut.set_result(data[i:])

    async def call(self, event: str, payload: dict[str, Any], timeout: float = 10.0) -> str:
        assert self.ws is not None
        ack_id = self.next_ack
        self.next_ack += 1
        fut = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = fut
        await self.ws.send_str(f"42{ack_id}" + json.dumps([event, payload], separators=(",", ":")))
        return await asyncio.wait_for(fut, timeout)

    async def emit(self, event: str, payload: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_str("42" + json.dumps([event, payload], separators=(",", ":")))

    async def close(self) -> None:
        if self.reader:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()


def percentiles(samples_ns: array) -> dict[str, float]:  # type: ignore[type-arg]
    if not samples_ns:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    s = sorted(samples_ns)
    at = lambda q: s[min(len(s) - 1, int(q * len(s)))] / 1e6  # noqa: E731
    return {"p50_ms": round(at(0.5), 2), "p99_ms": round(at(0.99), 2), "max_ms": round(s[-1] / 1e6, 2)}


async def open_clients(url: str, tokens: list[str | None], n: int, room_id: int, samples: array | None,  # type: ignore[type-arg]
                       join: bool = True, url2: str = "") -> tuple[aiohttp.ClientSession, list[SioClient]]:
    """N clients; with ``url2`` every odd client connects to the second node."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None))
    clients = [SioClient(session, url2 if url2 and i % 2 else url, tokens[i % len(tokens)], samples) for i in range(n)]
    for i in range(0, n, 200):
        await asyncio.gather(*(c.connect() for c in clients[i : i + 200]))
    if join:
        for i in range(0, n, 200):
            await asyncio.gather(*(c.call("room:join", {"room_id": room_id}, timeout=30) for c in clients[i : i + 200]))
    return session, clients


async def fanout(a: argparse.Namespace, tokens: list[str | None]) -> dict[str, Any]:
    samples: array = array("q")  # type: ignore[type-arg]
    session, clients = await open_clients(a.url, tokens, a.clients, a.room, samples, url2=a.url2)
    if a.url2:  # senders on the first node, receivers on both
        clients = clients[0::2] + clients[1::2]
    await asyncio.sleep(1.0)
    for c in clients:
        c.received = 0
    samples.__init__("q")  # type: ignore[misc]
    senders = clients[: a.senders]
    interval = a.senders / a.rate  # seconds between two sends of one sender
    sent = 0
    t0 = time.monotonic()

    async def sender(c: SioClient, offset: float) -> None:
        nonlocal sent
        k = 0
        while True:
            due = t0 + offset + k * interval
            if due - t0 > a.duration:
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await c.emit("message:send", {"room_id": a.room, "body": f"t{time.time_ns()} {'x' * a.size}",
                                          "client_id": uuid.uuid4().hex})
            sent += 1
            k += 1

    await asyncio.gather(*(sender(c, i * interval / a.senders) for i, c in enumerate(senders)))
    await asyncio.sleep(2.0)  # drain
    expected = sent * a.clients
    received = sum(c.received for c in clients)
    for c in clients:
        await c.close()
    await session.close()
    return {"mode": "fanout", "clients": a.clients, "senders": a.senders, "offered_msgs_s": a.rate,
            "offered_deliveries_s": a.rate * a.clients, "sent": sent, "expected": expected, "received": received,
            "delivered_ratio": round(received / expected, 5) if expected else 0.0,
            "delivered_s": round(received / a.duration), **percentiles(samples)}


async def rooms(a: argparse.Namespace, tokens: list[str | None]) -> dict[str, Any]:
    """Many small rooms: clients in rooms of ``--room-size``; one member of each room sends one
    message per second."""
    samples: array = array("q")  # type: ignore[type-arg]
    ids = [int(r) for r in Path(a.room_ids).read_text().split()] if a.room_ids else []
    n_rooms = a.clients // a.room_size
    room_of = [ids[i % n_rooms] if ids else 1000 + i % n_rooms for i in range(a.clients)]
    session, clients = await open_clients(a.url, tokens, a.clients, 0, samples, join=False)
    for i in range(0, len(clients), 200):
        await asyncio.gather(*(c.call("room:join", {"room_id": room_of[i + j]}, timeout=60)
                               for j, c in enumerate(clients[i : i + 200])))
    await asyncio.sleep(1.0)
    for c in clients:
        c.received = 0
    samples.__init__("q")  # type: ignore[misc]
    senders = clients[:n_rooms]  # clients 0..n_rooms-1 are one per room
    sent = 0
    t0 = time.monotonic()

    async def sender(i: int, c: SioClient) -> None:
        nonlocal sent
        k = 0
        while (due := t0 + (i / n_rooms) + k) - t0 <= a.duration:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await c.emit("message:send", {"room_id": room_of[i], "body": f"t{time.time_ns()} hi", "client_id": uuid.uuid4().hex})
            sent += 1
            k += 1

    await asyncio.gather(*(sender(i, c) for i, c in enumerate(senders)))
    await asyncio.sleep(2.0)
    expected = sent * a.room_size
    received = sum(c.received for c in clients)
    for c in clients:
        await c.close()
    await session.close()
    return {"mode": "rooms", "clients": a.clients, "rooms": n_rooms, "sent": sent, "expected": expected,
            "received": received, "delivered_ratio": round(received / expected, 5) if expected else 0.0,
            **percentiles(samples)}


async def persist(a: argparse.Namespace, tokens: list[str | None]) -> dict[str, Any]:
    """Each client writes to its own room (``--own-rooms``: one room id per token), so this
    measures the persisted send path, not the fan-out."""
    session, clients = await open_clients(a.url, tokens, a.clients, a.room, None, join=False)
    rooms = [int(r) for r in Path(a.own_rooms).read_text().split()] if a.own_rooms else [a.room]
    for i, c in enumerate(clients):
        c.room = rooms[i % len(rooms)]  # type: ignore[attr-defined]
        await c.call("room:join", {"room_id": c.room}, timeout=30)  # type: ignore[attr-defined]
    lat: array = array("q")  # type: ignore[type-arg]
    errors = 0
    stop = time.monotonic() + a.duration

    async def loop(c: SioClient) -> None:
        nonlocal errors
        while time.monotonic() < stop:
            t = time.time_ns()
            ack = await c.call("message:send", {"room_id": c.room, "body": f"t{t} persisted",  # type: ignore[attr-defined]
                                                "client_id": uuid.uuid4().hex})
            if '"ok":true' in ack:
                lat.append(time.time_ns() - t)
            else:
                errors += 1

    await asyncio.gather(*(loop(c) for c in clients))
    for c in clients:
        await c.close()
    await session.close()
    return {"mode": "persist", "clients": a.clients, "acks": len(lat), "errors": errors,
            "acks_s": round(len(lat) / a.duration), **percentiles(lat)}


async def idle(a: argparse.Namespace, tokens: list[str | None]) -> dict[str, Any]:
    session, clients = await open_clients(a.url, tokens, a.clients, a.room, None, join=False)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), a.duration)
    for c in clients:
        await c.close()
    await session.close()
    return {"mode": "idle", "clients": a.clients}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["fanout", "persist", "idle", "rooms"])
    p.add_argument("--url", required=True)
    p.add_argument("--tokens", default="", help="file with one access token per line (chat-server)")
    p.add_argument("--room", type=int, default=1)
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--rate", type=float, default=10, help="messages per second, all senders together")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--duration", type=float, default=5)
    p.add_argument("--own-rooms", default="", help="file with one room id per token (persist mode)")
    p.add_argument("--url2", default="", help="a second node: odd clients connect there (fanout)")
    p.add_argument("--room-size", type=int, default=10)
    p.add_argument("--room-ids", default="", help="file with room ids (rooms mode, chat-server)")
    a = p.parse_args()
    assert a.url.startswith(("http://127.", "http://localhost")), "loopback targets only"
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tokens: list[str | None] = [t for t in open(a.tokens).read().split()] if a.tokens else [None]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run({"fanout": fanout, "persist": persist, "idle": idle, "rooms": rooms}[a.mode](a, tokens))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    result["loadgen_cpu_s"] = round(ru.ru_utime + ru.ru_stime, 2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
