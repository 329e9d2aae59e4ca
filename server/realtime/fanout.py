"""The broadcast path, tuned for large rooms.

python-socketio's stock manager, for every broadcast, scans the payload for binary data,
creates one asyncio task per recipient, and each recipient's writer re-encodes the frame; every
recipient's send also logs and re-checks ping timeouts. ``FanoutRedisManager`` keeps the
protocol and the cross-node Redis bus as they are and changes only the local delivery of
events without acks:

- the Socket.IO packet is encoded once (JSON through orjson, no binary scan: orjson refuses
  bytes, and an emit with bytes in its data then takes the stock path, with attachments), wrapped
  once as an Engine.IO packet whose ``encode()`` returns the cached frame; ``emit``'s arguments
  mean what they mean in python-socketio (a tuple is several arguments, ``None`` none);
- the shared frame goes to each recipient's ``PacketQueue`` (``lean_socket``): on a WebSocket
  with nothing queued ahead it is written straight away, otherwise it waits behind what is
  queued (acks and everything else), so per-socket order is always kept. No task per
  recipient, no encoding per recipient.

``make_websocket_class`` lets the server decide on permessage-deflate (aiohttp negotiates it by
default, which costs memory per connection and CPU per frame; Node's engine.io turned it off):
off, the connection is our own (``lean_ws``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp.web import WebSocketResponse
from engineio import async_socket as eio_async_socket
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet as sio_packet

from .bus import RedisBus
from .lean_socket import PacketQueue, text_frame
from .lean_ws import LeanDriver


class _EncodedPacket(eio_packet.Packet):
    """An Engine.IO MESSAGE packet encoded once and shared by every recipient."""

    def __init__(self, frame: str) -> None:
        self.packet_type = eio_packet.MESSAGE
        self.data = frame
        self.binary = False
        self._frame = "4" + frame

    def encode(self, b64: bool = False) -> str:
        return self._frame


class IndexedRooms:
    """python-socketio's room bookkeeping plus a reverse index, sid -> its rooms.

    The stock ``basic_disconnect`` finds a socket's rooms by scanning (and copying) every room of
    the namespace: every socket's own room, every user channel, every chat room. That is
    O(rooms) per disconnect, so O(N^2) when N sockets go at once: 10,000 clients dropping kept a
    node at 100 % CPU for minutes. With the index a disconnect touches only the socket's rooms.
    """

    rooms: dict[str, dict[Any, Any]]
    callbacks: dict[str, Any]
    pending_connect: dict[str, list[str]]
    pending_disconnect: dict[str, list[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sid_rooms: dict[tuple[str, str], set[Any]] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid)  # type: ignore[misc]
        self._sid_rooms.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        joined = self._sid_rooms.get((namespace, sid))
        if joined is not None:
            joined.discard(room)
            if not joined:
                del self._sid_rooms[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # the stock method, with the room scan replaced by the index
        if namespace not in self.rooms:
            return
        for room in list(self._sid_rooms.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self._sid_rooms.pop((namespace, sid), None)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            sids = pending.get(namespace)
            if sids is not None and sid in sids:
                sids.remove(sid)
                if not sids:
                    del pending[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [r for r in self._sid_rooms.get((namespace, sid), ()) if r is not None]


def event_args(data: list[Any]) -> list[Any]:
    """The arguments a client receives for a bus message's ``data`` list, as the stock managers
    decide them (``AsyncPubSubManager._handle_emit`` then ``AsyncManager.emit``): one ``None``
    means no argument, one tuple is spread, anything else is the arguments."""
    if len(data) == 1:
        only = data[0]
        if only is None:
            return []
        return list(only) if isinstance(only, tuple) else [only]
    return list(data)


class FanoutRedisManager(IndexedRooms, RedisBus):
    async def emit(self, event: str, data: Any, namespace: str | None = None, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None, **kwargs: Any) -> None:
        room = to or room
        if callback is not None or kwargs.get("ignore_queue"):
            await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid,
                               callback=callback, **kwargs)
            return
        namespace = namespace or "/"
        # python-socketio's ``emit`` contract: a tuple is several arguments, None none
        bus_data = list(data) if isinstance(data, tuple) else [data]
        try:
            self._deliver_local(event, event_args(bus_data), namespace, room, skip_sid)
            await self._publish({"method": "emit", "event": event, "data": bus_data, "binary": False,
                                 "namespace": namespace, "room": room, "skip_sid": skip_sid,
                                 "callback": None, "host_id": self.host_id})
        except TypeError:
            # orjson refuses bytes, and refuses them before anything was delivered or published
            # (both encode the same data; the local encoding, when there is one, comes first).
            # Binary payloads take the stock path: attachments, BINARY_EVENT, base64 on the bus.
            if not sio_packet.Packet.data_is_binary(bus_data):
                raise
            await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid)

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("callback") is not None or message.get("binary"):
            await super()._handle_emit(message)
            return
        data = message["data"]
        args = event_args(data) if isinstance(data, list) else [data]
        self._deliver_local(message["event"], args, message.get("namespace") or "/",
                            message.get("room"), message.get("skip_sid"))

    def emit_now(self, event: str, data: Any, to: Any, skip_sid: Any = None) -> bool:
        """``emit(event, data, to=to, skip_sid=skip_sid)`` on ``/`` for one argument, done before
        it returns: delivered to this node's sockets and queued for the bus (whose publisher
        bounds every Redis call), so the caller has nothing to wait for and no timeout to set.
        The argument's JSON is encoded once, for the local frame and the bus message both (the
        stock path encodes it for each). False, with nothing delivered or queued, for what only
        the stock path sends: no argument or several (None, a tuple), or bytes."""
        if data is None or isinstance(data, tuple):
            return False
        try:
            arg = orjson.dumps(data)
        except TypeError:
            return False  # bytes: BINARY_EVENT with attachments
        name = orjson.dumps(event)
        # byte for byte what the packet class encodes for [event, data] (orjson, no spaces)
        self._deliver_frame("2[" + name.decode() + "," + arg.decode() + "]", "/", to, skip_sid)
        self._queue_publish(to, b'{"method":"emit","event":' + name + b',"data":[' + arg
                            + b'],"binary":false,"namespace":"/","room":' + orjson.dumps(to) + b',"skip_sid":'
                            + orjson.dumps(skip_sid) + b',"callback":null,"host_id":' + self._host_json + b"}")
        return True

    def _deliver_local(self, event: str, args: list[Any], namespace: str, room: Any, skip_sid: Any) -> int:
        if namespace not in self.rooms:
            return 0
        # the server's packet class: the one python-socketio gave its ``json`` (orjson)
        pkt = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args], binary=False)
        return self._deliver_frame(pkt.encode(), namespace, room, skip_sid)

    def _deliver_frame(self, encoded: str, namespace: str, room: Any, skip_sid: Any) -> int:
        """Write ``encoded`` (a Socket.IO packet) to this node's sockets in ``room``."""
        if namespace not in self.rooms:
            return 0
        frame = _EncodedPacket(encoded)
        payload = frame.encode().encode()
        wire = text_frame(payload)  # the WebSocket frame every recipient gets, built once
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        sockets = self.server.eio.sockets
        sent = 0
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            sock = sockets.get(eio_sid)
            if sock is None or sock.closed:
                continue
            queue = sock.queue
            if isinstance(queue, PacketQueue):
                if not queue.write_now(wire):
                    queue.put_frame(frame, payload)
            else:
                queue.put_nowait(frame)
            sent += 1
        return sent


def make_websocket_class(compress: bool) -> type:
    """engineio's WebSocket driver for our server: ``lean_ws.LeanDriver`` (our own RFC 6455
    connection, no permessage-deflate), or with ``compress`` aiohttp's ``WebSocketResponse``
    negotiating permessage-deflate, served by engineio's own handler and writer task."""
    if not compress:
        return LeanDriver

    class CompressingWebSocket(eio_aiohttp.WebSocket):
        async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
            request = environ["aiohttp.request"]
            self._sock = WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=True)
            await self._sock.prepare(request)
            self.environ = environ
            await self.handler(self)
            return self._sock

    return CompressingWebSocket


async def _poll_without_a_task(self: Any) -> list[Any]:
    """``engineio.AsyncSocket.poll`` without ``asyncio.wait_for``: on Python 3.11 that wraps every
    ``queue.get()`` in a new Task, i.e. one task per recipient per message on the broadcast path.
    ``asyncio.timeout`` bounds the wait the same way without a task. Semantics are unchanged."""
    try:
        async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
            packets = [await self.queue.get()]
        self.queue.task_done()
    except (TimeoutError, asyncio.CancelledError):
        raise eio_exceptions.QueueEmpty() from None
    if packets == [None]:
        return []
    while True:
        try:
            pkt = self.queue.get_nowait()
            self.queue.task_done()
            if pkt is None:
                self.queue.put_nowait(None)
                break
            packets.append(pkt)
        except asyncio.QueueEmpty:
            break
    return packets


def install_socket_poll() -> None:
    """Replace engineio's per-socket ``poll`` (idempotent; the only engineio server in the process is ours)."""
    eio_async_socket.AsyncSocket.poll = _poll_without_a_task
