"""Reference: stock python-socketio (AsyncServer on aiohttp, default options) with chat-server's
event names, no auth, no storage; uvloop as the event loop (chat-server runs on it too).

``python pysio_server.py PORT``; with ``REDIS_URL`` set, the stock ``AsyncRedisManager`` carries
rooms across nodes (the two-node reference), otherwise the default in-memory manager.
"""

from __future__ import annotations

import itertools
import os
import sys
from typing import Any

import socketio
import uvloop
from aiohttp import web


def make_app() -> web.Application:
    redis_url = os.environ.get("REDIS_URL")
    manager = socketio.AsyncRedisManager(redis_url) if redis_url else None
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*", client_manager=manager)
    app = web.Application()
    sio.attach(app)
    seqs: dict[Any, int] = {}
    ids = itertools.count(1)

    @sio.on("room:join")
    async def join(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        await sio.enter_room(sid, f"r:{data['room_id']}")
        return {"ok": True}

    @sio.on("message:send")
    async def send(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        room = data["room_id"]
        seqs[room] = seqs.get(room, 0) + 1  # per-node sequence: enough for a reference
        message = {"id": next(ids), "room_id": room, "seq": seqs[room], "body": data["body"],
                   "client_id": data["client_id"]}
        await sio.emit("message", message, to=f"r:{room}")
        return {"ok": True, "message": message}

    return app


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "3001"))
    web.run_app(make_app(), host="127.0.0.1", port=port, print=None, loop=uvloop.new_event_loop())
