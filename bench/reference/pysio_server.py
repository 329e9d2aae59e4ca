"""Reference: stock python-socketio (AsyncServer on aiohttp, default manager, default options)
with chat-server's event names, no auth, no storage. uvloop, as chat-server uses."""

from __future__ import annotations

import itertools
import os
import sys

import socketio
import uvloop
from aiohttp import web

sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
app = web.Application()
sio.attach(app)
seqs: dict[int, int] = {}
ids = itertools.count(1)


@sio.on("room:join")
async def join(sid: str, data: dict) -> dict:  # type: ignore[type-arg]
    await sio.enter_room(sid, f"r:{data['room_id']}")
    return {"ok": True}


@sio.on("message:send")
async def send(sid: str, data: dict) -> dict:  # type: ignore[type-arg]
    room = data["room_id"]
    seqs[room] = seqs.get(room, 0) + 1
    message = {"id": next(ids), "room_id": room, "seq": seqs[room], "body": data["body"], "client_id": data["client_id"]}
    await sio.emit("message", message, to=f"r:{room}")
    return {"ok": True, "message": message}


if __name__ == "__main__":
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", 3001)), print=None)
