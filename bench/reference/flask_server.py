"""Reference for room fan-out: Flask-SocketIO with chat-server's event names, no auth, no storage.

Async mode: gevent (monkey-patched, the setup Flask-SocketIO's deployment notes describe), with
simple-websocket for the WebSocket transport. Why gevent: the threading mode serves each
WebSocket from its own OS thread (a thousand threads contending for the GIL) and eventlet is
deprecated by its maintainers; gevent is the production choice still recommended.

``python flask_server.py PORT``
"""

from gevent import monkey

monkey.patch_all()

import itertools  # noqa: E402  (after monkey-patching, as gevent requires)
import os  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from flask import Flask  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(app, async_mode="gevent", cors_allowed_origins="*")
seqs: dict[Any, int] = {}
ids = itertools.count(1)


@socketio.on("room:join")
def on_join(data: dict[str, Any]) -> dict[str, Any]:
    join_room(f"r:{data['room_id']}")
    return {"ok": True}


@socketio.on("message:send")
def on_send(data: dict[str, Any]) -> dict[str, Any]:
    room = data["room_id"]
    seqs[room] = seqs.get(room, 0) + 1
    message = {"id": next(ids), "room_id": room, "seq": seqs[room], "body": data["body"], "client_id": data["client_id"]}
    socketio.emit("message", message, to=f"r:{room}")
    return {"ok": True, "message": message}


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "3002"))
    socketio.run(app, host="127.0.0.1", port=port, log_output=False)
