"""One load-generator worker process: owns clients ``i`` with ``i % workers == index``.

Driven over stdin/stdout by the coordinator (``bench.loadgen.__main__``), one line each way:

    worker -> "ready"                          every owned client connected (and joined)
    coord  -> "go <t0_ns> <msgs_per_s> <step>"  run one measured step starting at wall time t0
    worker -> {"sent": ..., "received": ...}   after t0 + duration + drain; raw latencies in
                                               <raw_dir>/<step>-<index>.bin (int64 ns)
    coord  -> "stop" (or EOF)                  close every client and exit

Modes: ``fanout`` (one room, S senders at a total rate; with ``stalled``, the last clients
stop reading once joined and are left out of the counts), ``rooms`` (rooms of ``room_size``,
one sender per room at 1 msg/s), ``persist`` (closed loop of acked sends, latency = ack time),
``idle`` (connect only, hold until "stop"). Wall-clock start times keep the workers' senders
in step with each other; send timestamps are ``time.time_ns()``, the clock receivers use too.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import uuid
from array import array
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .wsclient import SioConnection, ack_ok, connect

CONNECT_BATCH = 200  # concurrent handshakes per worker: bounded so the server's backlog holds
STALLED_RCVBUF = 4096  # bytes: a stalled client's receive buffer (no window autotuning)


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Worker:
    def __init__(self, spec: dict[str, Any], index: int) -> None:
        self.spec, self.index, self.workers = spec, index, int(spec["workers"])
        self.samples: array[int] = array("q")
        self.mine = list(range(index, int(spec["clients"]), self.workers))  # global client indices
        self.conns: dict[int, SioConnection] = {}
        self.tokens: list[str | None] = list(spec.get("tokens") or [None])
        self.raw_dir = Path(spec["raw_dir"])

    # --- setup --------------------------------------------------------------------------------

    def address(self, i: int) -> tuple[str, int]:
        url = self.spec["url2"] if self.spec.get("url2") and i % 2 else self.spec["url"]
        parts = urlsplit(url)
        assert parts.hostname in ("127.0.0.1", "localhost"), "loopback targets only"
        return parts.hostname, int(parts.port or 80)

    def source(self, i: int) -> str | None:
        """The local address client ``i`` connects from (``spec["sources"]``, round robin); None:
        the kernel's choice (127.0.0.1)."""
        sources: list[str] = self.spec.get("sources") or []
        return sources[i % len(sources)] if sources else None

    def room_of(self, i: int) -> int:
        s = self.spec
        if s["mode"] == "rooms":
            ids: list[int] = s.get("room_ids") or []
            n_rooms = int(s["clients"]) // int(s["room_size"])
            return ids[i % n_rooms] if ids else 1000 + i % n_rooms
        if s["mode"] == "persist" and s.get("own_rooms"):
            own: list[int] = s["own_rooms"]
            return own[i % len(own)]
        return int(s["room"])

    def senders(self) -> list[int]:
        """Global indices of the senders, in schedule order (the same list in every worker)."""
        s = self.spec
        n = int(s["clients"])
        if s["mode"] == "rooms":
            return list(range(n // int(s["room_size"])))  # client j is in room j
        first_node = [i for i in range(n) if not (s.get("url2") and i % 2)]
        return first_node[: int(s["senders"])]  # two nodes: senders on the first node

    async def setup(self) -> None:
        timeout = float(self.spec.get("connect_timeout", 60))
        for k in range(0, len(self.mine), CONNECT_BATCH):
            batch = self.mine[k : k + CONNECT_BATCH]
            # persist: the samples are ack times; the message events the clients also get are not
            samples = None if self.spec["mode"] == "persist" else self.samples
            conns = await asyncio.gather(*(connect(*self.address(i), self.tokens[i % len(self.tokens)],
                                                   samples, timeout, STALLED_RCVBUF if self.stalled(i) else None,
                                                   self.source(i))
                                           for i in batch))
            self.conns.update(zip(batch, conns, strict=True))
        if self.spec["mode"] == "idle" or self.spec.get("no_join"):
            return
        for k in range(0, len(self.mine), CONNECT_BATCH):
            batch = self.mine[k : k + CONNECT_BATCH]
            acks = await asyncio.gather(*(self.conns[i].call("room:join", {"room_id": self.room_of(i)}, timeout)
                                          for i in batch))
            bad = [a for _, a in acks if not ack_ok(a)]
            if bad:
                raise RuntimeError(f"room:join refused: {bad[0][:300]!r}")
        for i, conn in self.conns.items():
            if self.stalled(i) and conn.transport is not None:
                conn.transport.pause_reading()  # from now on it reads nothing: a slow consumer

    def stalled(self, i: int) -> bool:
        """The last ``stalled`` clients stop reading once joined (never senders: those come first)."""
        return i >= int(self.spec["clients"]) - int(self.spec.get("stalled", 0))

    # --- one measured step --------------------------------------------------------------------

    async def step(self, t0_ns: int, rate: float, step: int) -> dict[str, Any]:
        s = self.spec
        duration, drain = float(s["duration"]), float(s["drain"])
        for c in self.conns.values():
            c.received = c.late = 0
            c.since_ns = t0_ns
        del self.samples[:]
        t0 = time.monotonic() + (t0_ns - time.time_ns()) / 1e9  # wall start -> this process's monotonic
        result: dict[str, Any] = {"sent": 0, "errors": 0}
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        cpu0 = cpu_s()
        if s["mode"] == "persist" and not rate:
            await self._persist(t0 + duration, result)
        elif s["mode"] == "persist":
            self._persist_open(t0, duration, rate, result)
            await asyncio.sleep(max(0.0, t0 + duration - time.monotonic()))
        else:
            await self._send(t0, duration, rate, result)
        result["cpu_s"] = cpu_s() - cpu0  # over the sending window only
        await asyncio.sleep(max(0.0, t0 + duration + drain - time.monotonic()))
        if s["mode"] == "persist":
            result["received"] = len(self.samples)  # acks
            for c in self.conns.values():
                c.ack_callbacks.clear()  # unacked by now: counted as lost
        else:
            result["received"] = sum(c.received for i, c in self.conns.items() if not self.stalled(i))
            result["late"] = sum(c.late for c in self.conns.values())
        result["lost"] = sum(1 for c in self.conns.values() if c.lost)  # closed by the server, not by us
        (self.raw_dir / f"{step}-{self.index}.bin").write_bytes(self.samples.tobytes())
        return result

    async def _send(self, t0: float, duration: float, rate: float, result: dict[str, Any]) -> None:
        s = self.spec
        order = self.senders()
        mine = [(k, i) for k, i in enumerate(order) if i in self.conns]
        if s["mode"] == "rooms":
            interval, spread = 1.0, 1.0  # one message per room per second
        else:
            interval = len(order) / rate  # seconds between two sends of one sender
            spread = interval
        pad = "x" * int(s.get("size", 64))

        async def sender(k: int, i: int) -> None:
            conn, room, n = self.conns[i], self.room_of(i), 0
            due = t0 + k * spread / len(order)
            while due < t0 + duration:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                conn.emit("message:send", {"room_id": room, "body": f"t{time.time_ns()} {pad}",
                                           "client_id": uuid.uuid4().hex})
                n += 1
                due += interval
            result["sent"] += n

        await asyncio.gather(*(sender(k, i) for k, i in mine))

    async def _persist(self, stop: float, result: dict[str, Any]) -> None:
        """Closed loop: each client sends its next message when the previous one is acked."""

        async def loop(i: int) -> None:
            conn, room = self.conns[i], self.room_of(i)
            while time.monotonic() < stop:
                t = time.time_ns()
                try:
                    at, ack = await conn.call("message:send", {"room_id": room, "body": f"t{t} persisted",
                                                               "client_id": uuid.uuid4().hex}, timeout=10)
                except TimeoutError:
                    result["errors"] += 1
                    continue
                except ConnectionError:  # the server closed it: this client is done
                    result["errors"] += 1
                    return
                if ack_ok(ack):
                    self.samples.append(at - t)
                    result["sent"] += 1
                else:
                    result["errors"] += 1

        await asyncio.gather(*(loop(i) for i in self.conns))

    def _persist_open(self, t0: float, duration: float, rate: float, result: dict[str, Any]) -> None:
        """Open loop: every client sends at ``rate / clients`` msgs/s whatever the acks do, so
        a slow server shows as latency and loss instead of as a lower send rate."""
        loop = asyncio.get_running_loop()
        start = loop.time() + (t0 - time.monotonic())  # the loop's clock may differ from monotonic()
        end = start + duration
        total = int(self.spec["clients"])
        interval = total / rate
        samples = self.samples

        def fire(i: int, due: float) -> None:
            if due >= end:
                return
            t = time.time_ns()

            def on_ack(at: int, ack: bytes) -> None:
                if ack_ok(ack):
                    samples.append(at - t)
                else:
                    result["errors"] += 1

            self.conns[i].emit_acked("message:send", {"room_id": self.room_of(i), "body": f"t{t} persisted",
                                                      "client_id": uuid.uuid4().hex}, on_ack)
            result["sent"] += 1
            loop.call_at(due + interval, fire, i, due + interval)

        for i in self.conns:
            first = start + (i / total) * interval  # spread the clients over one interval
            loop.call_at(first, fire, i, first)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.conns.values()), return_exceptions=True)


async def serve(spec: dict[str, Any], index: int) -> None:
    worker = Worker(spec, index)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        await worker.setup()
        print("ready", flush=True)
        while line := (await reader.readline()).decode().split():
            if line[0] != "go":
                break
            res = await worker.step(int(line[1]), float(line[2]), int(line[3]))
            print(json.dumps(res), flush=True)
    finally:
        await worker.close()


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 10,000 clients need the fds
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(spec, int(sys.argv[2])))
    else:
        uvloop.run(serve(spec, int(sys.argv[2])))


if __name__ == "__main__":
    main()
