"""``python -m bench.loadgen MODE --url http://127.0.0.1:PORT ...``: one run against a server
that is already running (the harness in ``bench/__main__.py`` starts servers itself).

Prints one JSON line per measured step. ``idle`` prints ``ready`` once every client is
connected and holds them until stdin closes (or ``--hold`` seconds pass).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from .coordinator import Loadgen


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen")
    p.add_argument("mode", choices=["fanout", "rooms", "persist", "idle"])
    p.add_argument("--url", required=True)
    p.add_argument("--url2", default="", help="a second node: odd-numbered clients connect there")
    p.add_argument("--tokens", default="", help="file with one access token per line (chat-server)")
    p.add_argument("--room", type=int, default=1)
    p.add_argument("--room-ids", default="", help="file with room ids (rooms mode)")
    p.add_argument("--own-rooms", default="", help="file with one room id per client (persist mode)")
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--room-size", type=int, default=10)
    p.add_argument("--rates", default="10000", help="offered deliveries/s, comma-separated (fanout)")
    p.add_argument("--size", type=int, default=64, help="padding bytes in each body")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--drain", type=float, default=2.0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--cpus", default="", help="CPUs to pin the workers to, e.g. 1")
    p.add_argument("--server-pid", type=int, action="append", default=[])
    p.add_argument("--hold", type=float, default=600.0, help="idle: longest hold")
    a = p.parse_args()
    if not a.url.startswith(("http://127.", "http://localhost")):
        p.error("loopback targets only")

    def ids(path: str) -> list[int]:
        return [int(x) for x in Path(path).read_text().split()] if path else []

    spec = {"mode": a.mode, "url": a.url, "url2": a.url2, "room": a.room, "clients": a.clients,
            "senders": a.senders, "room_size": a.room_size, "size": a.size, "duration": a.duration,
            "drain": a.drain, "workers": a.workers, "cpus": [int(c) for c in a.cpus.split(",") if c],
            "tokens": Path(a.tokens).read_text().split() if a.tokens else [],
            "room_ids": ids(a.room_ids), "own_rooms": ids(a.own_rooms)}
    with Loadgen(spec, a.server_pid) as lg:
        if a.mode == "idle":
            print("ready", flush=True)
            t = threading.Thread(target=sys.stdin.read, daemon=True)
            t.start()
            t.join(a.hold)
        elif a.mode == "fanout":
            for r in lg.ladder([int(x) for x in a.rates.split(",")], stop_early=False, label=a.mode):
                print(json.dumps(r), flush=True)
        else:
            print(json.dumps(lg.step()), flush=True)


if __name__ == "__main__":
    main()
