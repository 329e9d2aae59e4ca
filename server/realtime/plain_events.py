"""Client events without python-socketio's generic layers: the per-event path of every send.

A client's ``42<id>["message:send",{...}]`` goes, in the stock libraries, through: an Engine.IO
packet decoded (JSON tried on it first, then an exception for the id's digit), a reader task of
the connection (``lean_ws``) awaiting engineio's ``receive`` (a log call, ``_trigger_event``
building a closure and asking ``inspect`` whether the handler is a coroutine function),
python-socketio's ``_handle_eio_message`` (a ``Packet`` decoded), ``_handle_event`` (a log call,
a task per event registered in a set), ``_trigger_event`` (handler resolution, ``inspect``
again) and, for the ack, a ``Packet`` whose data is scanned for bytes, encoded, wrapped in an
Engine.IO packet and sent. Each step is small; together they were a good part of chat-server's
CPU per message.

``PlainEvents`` (mixed into ``peers.ChatSocketServer``) takes the common case straight:

- ``dispatch`` is called by ``lean_ws.LeanWebSocket`` for a text frame carrying an Engine.IO
  MESSAGE when nothing of that connection is waiting to be handled (no reader task, so order
  is kept: what came before is done). A plain Socket.IO EVENT on ``/`` (``2``, an optional id
  of ASCII digits, a JSON array whose first item names an event with a coroutine handler
  registered on ``/``, the reserved ``connect``/``disconnect`` excepted), from a socket
  connected to ``/``, starts its handler task at once, as ``_handle_event`` would. Anything else
  (a namespace, attachments, an ACK, a CONNECT, a binary packet, JSON that does not parse, an
  unknown event, a socket not connected) returns False and takes the stock path unchanged,
  through the reader task, so its errors and logs are the stock ones.
- The handler task runs ``_handle_event_internal`` (the name ``shutdown._event_tasks`` finds
  in-flight events by); for a handler of that table the handler is called directly and its
  result acked with the ack's JSON encoded once by orjson into a ready Engine.IO packet, sent
  through engineio's ``send_packet`` (its ping-timeout check and the session's queue). The wire
  is the stock one (``test_conformance_socketio``). A result orjson refuses (bytes) is acked by
  the stock ``Packet`` (BINARY_ACK with attachments).

What the stock path does and this one does not: engineio's and python-socketio's ``info`` log
lines for each received event (``engineio_logger``/``logger`` debugging output).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import socketio
from socketio import packet as sio_packet

from .fanout import _EncodedPacket

_DIGITS = frozenset("0123456789")
MAX_ID_DIGITS = 18  # an id past this (a 64-bit integer's digits) takes the stock path

CoroutineHandler = Callable[..., Coroutine[Any, Any, Any]]


class PlainEvents(socketio.AsyncServer):
    """python-socketio's server with the straight path for plain events (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # event -> (the handler as registered, it if a coroutine function else None)
        self._plain: dict[str, tuple[Any, CoroutineHandler | None]] = {}
        self._plain_tasks: set[asyncio.Task[Any]] = set()
        self.eio.plain_dispatch = self.dispatch  # what lean_ws offers a connection's messages to

    def _plain_handler(self, namespace: str, event: Any) -> CoroutineHandler | None:
        """The coroutine handler registered for ``event`` on ``/``, or None (the stock path)."""
        if namespace != "/" or type(event) is not str or event in self.reserved_events:
            return None
        registered = self.handlers.get("/", {}).get(event)
        if registered is None:
            return None
        cached = self._plain.get(event)
        if cached is None or cached[0] is not registered:
            cached = (registered, registered if inspect.iscoroutinefunction(registered) else None)
            self._plain[event] = cached
        return cached[1]

    def dispatch(self, sock: Any, text: str) -> bool:
        """Start the handler of the Socket.IO packet ``text`` (an Engine.IO MESSAGE's data from
        engineio socket ``sock``) if it is a plain event; False: nothing done, the stock path."""
        if text[:1] != "2" or sock.closed or self.eio.handlers.get("message") != self._handle_eio_message:
            return False
        eio_sid = sock.sid
        if eio_sid in self._binary_packet:  # attachments of a binary packet are pending
            return False
        end = len(text)
        i = 1
        while i < end and text[i] in _DIGITS:
            i += 1
        if i == end or text[i] != "[" or i - 1 > MAX_ID_DIGITS:
            return False
        try:
            data = orjson.loads(text[i:])
        except orjson.JSONDecodeError:
            return False
        if type(data) is not list or not data or self._plain_handler("/", data[0]) is None:
            return False
        sid = self.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is None or not self.manager.is_connected(sid, "/"):
            return False
        task = asyncio.get_running_loop().create_task(
            self._handle_event_internal(self, sid, eio_sid, data, "/", int(text[1:i]) if i > 1 else None))
        self._plain_tasks.add(task)
        task.add_done_callback(self._plain_tasks.discard)
        return True

    async def _handle_event_internal(self, server: Any, sid: str, eio_sid: str, data: list[Any],
                                     namespace: str, id: int | None) -> None:
        handler = self._plain_handler(namespace, data[0])
        if handler is None:
            await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
            return
        try:
            r = await handler(sid, *data[1:])
        except asyncio.CancelledError:
            r = None  # as python-socketio's _trigger_event: the ack still goes, empty
        if id is None:
            return
        # tuples are several arguments, None none (python-socketio's ack rule)
        args = [] if r is None else list(r) if isinstance(r, tuple) else [r]
        try:
            body = orjson.dumps(args)
        except TypeError:
            await self._send_packet(eio_sid, self.packet_class(sio_packet.ACK, namespace=namespace, id=id, data=args))
            return
        await self.eio.send_packet(eio_sid, _EncodedPacket("3" + str(id) + body.decode()))
