"""Per-connection memory of Engine.IO sessions, kept small.

An idle WebSocket session costs engineio, per connection, an ``asyncio.Queue`` (four deques of
~600 bytes each, three of them always empty, and an ``Event``). ``PacketQueue`` replaces it with
the subset of the queue interface engineio, ``fanout`` and ``shutdown`` use: unbounded, items in
a list that exists only while something is queued, waiting getters and ``join`` callers in lists
that exist only while someone waits.

WebSocket sessions: engineio runs, besides aiohttp's handler, a writer task draining the queue
and, for every frame it waits for, a task wrapped in ``wait_for`` (a timer each). Here the
connection is a ``lean_ws.LeanWebSocket`` (our RFC 6455 protocol on the bare transport, no task
while idle), and the queue, once attached to it, writes each packet straight to it when nothing
is ahead of it and the transport takes more; otherwise the packet waits in the queue and a drain
task (alive only while there is a backlog) writes it, in order, with the transport's flow control.
A session whose client stops answering PINGs has its connection aborted by the ping scheduler
(engineio relied on the read timeout for that).

Engine.IO pings: engineio starts one task per session that sleeps ``ping_interval`` and sends
the next PING (a Task, its coroutine, a Future, a timer handle and a context per connection).
``PingScheduler`` sends every session's pings from one task: sessions wait in a FIFO of
``(due, socket)`` - every session waits the same interval, so the FIFO stays in due order.
Same protocol: a PING ``ping_interval`` after the session opened or after the client's last
PONG; ``check_ping_timeout`` still closes sessions whose PONG does not come.

Slow consumers: engineio's queue grows without bound behind a client that stops reading (until
its ping deadline, ~45 s, every broadcast of its rooms piles up). A ``PacketQueue`` made with
``QueueLimits`` holds at most ``max_packets`` packets and ``max_bytes`` bytes (encoded packet
lengths) behind what the transport has taken; the packet that would pass either cap drops the
session instead: what is queued is discarded, a WebSocket is aborted (a client that does not
read would not complete a close handshake), a polling session gets CLOSE and ends. The client
reconnects and catches up with ``sync``. What a dropped session held before it went is bounded:
the cap, plus the transport's buffer (asyncio pauses writing past its high-water mark, 64 KiB),
plus the one packet the drain task is writing.

The end of a connection: once its WebSocket's end is written or the connection is found dead,
the queue takes nothing more. A node's shutdown flushes every session with an end of its own
and ``join``; for a session whose client had just gone, that end would have had no writer, and
the shutdown waited its whole drain bound (5 s) for it.

Protocol errors (``lean_ws``): a WebSocket peer that sends CLOSE, a packet that does not decode,
or a packet of no Engine.IO type has its WebSocket closed (engineio's handler ends the session on
an undecodable packet through an exception, after CLOSE through its read timeout; ours has none).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
import time
from collections.abc import Callable
from typing import Any

from engineio import async_socket as eio_async_socket
from engineio import packet as eio_packet

log = logging.getLogger(__name__)


class QueueLimits:
    """The cap on what one session may have queued behind a slow reader; one instance shared by
    every queue of a server. ``on_drop`` is called once per session dropped (a metric)."""

    __slots__ = ("max_bytes", "max_packets", "on_drop")

    def __init__(self, max_bytes: int, max_packets: int, on_drop: Callable[[], object] | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_packets = max_packets
        self.on_drop = on_drop


def packet_size(pkt: Any) -> int:
    """What ``pkt`` (an Engine.IO packet) weighs on the queue's byte cap: its encoded length for
    text and binary data (the type digit + the data; characters for text, which is what a mostly
    ASCII JSON frame costs in bytes), a small constant for the data-less and OPEN packets. A pure
    function of the packet, so what ``put`` adds ``get`` takes off exactly."""
    data = pkt.data
    return 1 + len(data) if isinstance(data, (str, bytes)) else 64


class PacketQueue:
    """A FIFO with ``asyncio.Queue``'s semantics for ``put``/``get``/``task_done``/``join``;
    unbounded without ``limits``, else a packet past the cap drops the session (module docstring)."""

    __slots__ = ("_bytes", "_drain", "_dropped", "_ended", "_getters", "_head", "_items", "_joiners", "_limits",
                 "_owner", "_unfinished", "_ws")

    def __init__(self, limits: QueueLimits | None = None) -> None:
        self._limits = limits
        self._bytes = 0  # sum of ``packet_size`` over the queued items
        self._dropped = False  # past the cap: nothing is queued any more
        # the session's transport is gone (its end written, the connection dead, or dropped past
        # the cap): nothing is queued any more (nothing would write it, and a ``join`` - a node's shutdown flushing
        # the session - would wait for it in vain)
        self._ended = False
        # the engineio socket of the session (``bind``); a polling session is closed through it
        self._owner: Any = None
        self._items: list[Any] | None = None
        self._head = 0  # index of the next item in ``_items``
        # futures of the coroutines waiting in ``get()`` (None when nobody waits); the name is
        # asyncio.Queue's, which callers test for "a reader is waiting"
        self._getters: list[asyncio.Future[None]] | None = None
        self._unfinished = 0
        self._joiners: list[asyncio.Future[None]] | None = None
        # the session's engineio WebSocket wrapper once attached (see ``attach``)
        self._ws: Any = None
        self._drain: asyncio.Task[None] | None = None

    def qsize(self) -> int:
        return len(self._items) - self._head if self._items is not None else 0

    def empty(self) -> bool:
        return self._items is None

    def full(self) -> bool:
        return False

    def put_nowait(self, item: Any) -> None:
        self.put_frame(item, None)

    def write_now(self, wire: bytes) -> bool:
        """Write ``wire``, a whole WebSocket frame (``text_frame``), to the attached WebSocket if
        nothing is queued ahead of it and the transport takes more; False otherwise (the caller
        then queues the packet with ``put_frame``). The broadcast fast path: one frame built per
        message, one ``transport.write`` per recipient."""
        ws = self._ws
        if ws is None or self._items is not None or self._drain is not None:
            return False
        return bool(ws.write(wire))

    def bind(self, owner: Any) -> None:
        """The engineio socket this queue belongs to (engineio makes the queue before the socket
        is complete, so it is bound when the session opens)."""
        self._owner = owner

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    @property
    def dropped(self) -> bool:
        return self._dropped

    def put_frame(self, item: Any, payload: bytes | None) -> None:
        """``put_nowait(item)``; ``payload`` is ``item``'s encoded frame when the caller has it."""
        if self._ended:
            return
        ws = self._ws
        if ws is not None:
            if item is not None and self._items is None and self._drain is None:
                if payload is None:
                    encoded = item.encode()
                    binary = isinstance(encoded, bytes)
                    payload = encoded if binary else encoded.encode()
                else:
                    binary = False
                if ws.write_payload(payload, binary):
                    return
            if self._drain is None:
                self._drain = asyncio.get_running_loop().create_task(self._drain_backlog())
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        self._unfinished += 1
        limits = self._limits
        if item is not None and limits is not None:
            self._bytes += packet_size(item)
            if self._bytes > limits.max_bytes or len(self._items) - self._head > limits.max_packets:
                self._overflow(limits)
                return
        self._wake_getter()

    def _wake_getter(self) -> None:
        getters = self._getters
        if getters:
            for fut in getters:
                if not fut.done():
                    fut.set_result(None)
                    break

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def _overflow(self, limits: QueueLimits) -> None:
        """Drop the session: its client reads slower than its rooms talk."""
        self._dropped = self._ended = True
        self._discard()
        owner = self._owner
        log.info("%s: outbound queue past its cap, dropping the session", getattr(owner, "sid", "?"))
        if limits.on_drop is not None:
            limits.on_drop()
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.abort()  # the connection's end closes the session
        elif owner is not None and not (owner.closing or owner.closed):
            # polling: the pending (or next) GET answers CLOSE, then the session is gone
            self._append(eio_packet.Packet(eio_packet.CLOSE))
            self._append(None)
            owner.server.start_background_task(owner.close, wait=False, abort=True,
                                               reason=owner.server.reason.TRANSPORT_ERROR)

    def _append(self, item: Any) -> None:
        """Queue ``item`` past the cap and the drop (the end of a dropped polling session)."""
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        self._unfinished += 1
        if item is not None and self._limits is not None:
            self._bytes += packet_size(item)
        self._wake_getter()

    def _discard(self) -> None:
        while self._items is not None:
            self.get_nowait()
            self.task_done()

    def attach(self, ws: Any) -> None:
        """From now on write packets to ``ws`` (a ``lean_ws.LeanWebSocket``: ``write``,
        ``write_payload``, ``wait_writable``, ``send``, ``close``, ``abort``); what is queued
        already is written first.
        A ``None`` item, as for engineio's writer, means: write what is ahead, then close."""
        self._ws = ws
        if self._items is not None and self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(self._drain_backlog())

    async def finish(self) -> None:
        """Write what is queued, then close the WebSocket (the end of engineio's writer)."""
        if self._ws is None:
            return
        self.put_nowait(None)
        drain = self._drain
        if drain is not None:
            await asyncio.shield(drain)

    async def _drain_backlog(self) -> None:
        ws = self._ws
        try:
            while self._items is not None:
                try:
                    # aiohttp's writer waits for a paused transport only every 64 KiB written:
                    # wait before each packet, so a slow reader's backlog stays in the queue,
                    # where the cap counts it
                    await _writable(ws)
                except Exception:
                    await self._dead(ws)
                    return
                if self._ws is not ws:  # dropped while waiting
                    return
                pkt = self.get_nowait()
                try:
                    if pkt is None:
                        self._ws = None  # nothing is written after the end
                        self._ended = True
                        self._discard()  # queued behind the end (a second end from a shutdown)
                        await ws.close()
                        return
                    await ws.send(pkt.encode())
                except Exception:
                    await self._dead(ws)
                    return
                finally:
                    self.task_done()
        finally:
            self._drain = None

    async def _dead(self, ws: Any) -> None:
        """A dead connection: drop what is left (engineio's writer stops too)."""
        self._ws = None
        self._ended = True
        self._discard()
        await ws.close()

    def get_nowait(self) -> Any:
        items = self._items
        if items is None:
            raise asyncio.QueueEmpty
        item = items[self._head]
        self._head += 1
        if self._head == len(items):
            self._items, self._head, self._bytes = None, 0, 0
        elif item is not None and self._limits is not None:
            self._bytes -= packet_size(item)
        return item

    async def get(self) -> Any:
        while self._items is None:
            fut = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = [fut]
            else:
                self._getters.append(fut)
            try:
                await fut
            except BaseException:
                # woken and cancelled at once: pass the wake-up on, as asyncio.Queue does
                if fut.done() and not fut.cancelled() and self._items is not None:
                    self._wake_next(fut)
                raise
            finally:
                self._drop_getter(fut)
        return self.get_nowait()

    def _drop_getter(self, fut: asyncio.Future[None]) -> None:
        getters = self._getters
        if getters is not None:
            try:
                getters.remove(fut)
            except ValueError:
                pass
            if not getters:
                self._getters = None

    def _wake_next(self, skip: asyncio.Future[None]) -> None:
        for other in self._getters or ():
            if other is not skip and not other.done():
                other.set_result(None)
                return

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners is not None:
            joiners, self._joiners = self._joiners, None
            for fut in joiners:
                if not fut.done():
                    fut.set_result(None)

    async def join(self) -> None:
        if self._unfinished == 0:
            return
        fut = asyncio.get_running_loop().create_future()
        if self._joiners is None:
            self._joiners = [fut]
        else:
            self._joiners.append(fut)
        await fut


_TEXT_FRAME_SHORT = struct.Struct("!BB").pack
_TEXT_FRAME_MEDIUM = struct.Struct("!BBH").pack
_TEXT_FRAME_LONG = struct.Struct("!BBQ").pack


def text_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked, uncompressed, final WebSocket text frame (RFC 6455 5.2): what
    aiohttp's writer puts on the wire for it, built once to be written to many sockets."""
    n = len(payload)
    if n < 126:
        return _TEXT_FRAME_SHORT(0x81, n) + payload
    if n < 65536:
        return _TEXT_FRAME_MEDIUM(0x81, 126, n) + payload
    return _TEXT_FRAME_LONG(0x81, 127, n) + payload


async def _writable(ws: Any) -> None:
    """Wait until the WebSocket ``ws`` (``lean_ws.LeanWebSocket``) takes more."""
    wait = getattr(ws, "wait_writable", None)
    if wait is not None:
        await wait()


async def end_session(sock: Any, reason: str) -> None:
    """Close the Engine.IO session ``sock`` from the server side, its connection included.

    engineio's ``close`` runs the disconnect handler and queues CLOSE; a polling client gets it
    with its next GET. A lean WebSocket session's handler is waiting on a read with no timeout,
    so its WebSocket is closed here too (after the CLOSE packet), which ends the handler."""
    await sock.close(wait=False, abort=False, reason=reason)
    queue = sock.queue
    if isinstance(queue, PacketQueue):
        await queue.finish()


class PingScheduler:
    """Sends the Engine.IO PINGs of every session of one server from a single task."""

    GRANULARITY_S = 0.25  # pings due within this of each other go out in one wake-up

    def __init__(self, eio: Any) -> None:
        self.eio = eio
        self.due: collections.deque[tuple[float, Any]] = collections.deque()
        # (when, socket, last_ping) per PING sent: its PONG must have come by ``when``
        self.deadlines: collections.deque[tuple[float, Any, float]] = collections.deque()
        self.task: asyncio.Task[None] | None = None
        self._sleep: tuple[float, asyncio.Future[None]] | None = None  # (until, waker) of the task

    def schedule(self, sock: Any) -> None:
        loop = asyncio.get_running_loop()
        when = loop.time() + self.eio.ping_interval
        self.due.append((when, sock))
        task = self.task
        if task is None or task.done() or task.get_loop() is not loop:
            self.task = loop.create_task(self._run())
        elif self._sleep is not None and when + self.GRANULARITY_S < self._sleep[0]:
            # sleeping until a later deadline (ping_timeout > ping_interval): wake up earlier
            _wake(self._sleep[1])

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due, deadlines = self.due, self.deadlines
        while due or deadlines:
            now = loop.time()
            while deadlines and deadlines[0][0] <= now:
                _, sock, stamp = deadlines.popleft()
                if sock.last_ping == stamp:  # no PONG since that PING (or the session ended)
                    self._drop(sock)
            if due and due[0][0] <= now:
                _, sock = due.popleft()
                if not (sock.closing or sock.closed):
                    await self._ping(sock, now)
                continue
            wake = min(due[0][0] if due else now + 3600, deadlines[0][0] if deadlines else now + 3600)
            wake = max(wake, now + self.GRANULARITY_S)
            fut = loop.create_future()
            timer = loop.call_at(wake, _wake, fut)
            self._sleep = (wake, fut)
            try:
                await fut
            finally:
                timer.cancel()
                self._sleep = None

    async def _ping(self, sock: Any, now: float) -> None:
        sock.last_ping = stamp = time.time()  # what check_ping_timeout measures the PONG against
        try:
            await sock.send(eio_packet.Packet(eio_packet.PING))
        except Exception:  # one broken session must not stop everyone's pings
            log.exception("engine.io ping to %s failed", sock.sid)
            return
        if isinstance(sock.queue, PacketQueue) and sock.queue._ws is not None:
            # engineio's reader timed out on a silent client; ours has no timeout
            self.deadlines.append((now + self.eio.ping_timeout + self.GRANULARITY_S, sock, stamp))

    @staticmethod
    def _drop(sock: Any) -> None:
        """Close the WebSocket of a session whose client stopped answering: its handler then
        ends the session (and runs the disconnect handler) as for any lost connection."""
        ws = sock.queue._ws
        if ws is None:
            return
        log.info("%s: no PONG within ping_timeout, closing the WebSocket", sock.sid)
        ws.abort()  # a client that stopped answering would not complete a close handshake


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


_stock_schedule_ping = eio_async_socket.AsyncSocket.schedule_ping


def _schedule_ping(self: Any) -> None:
    scheduler = getattr(self.server, "lean_pings", None)
    if scheduler is None:
        _stock_schedule_ping(self)
    elif self.last_ping:  # only after the previous PING was sent (as engineio does)
        self.last_ping = None
        scheduler.schedule(self)


def install_lean_sockets(eio: Any) -> None:
    """Lean sessions for ``eio``: a ``PacketQueue`` per session instead of an ``asyncio.Queue``,
    and one task for all PINGs (``schedule_ping`` is patched on the class; servers without
    ``install_lean_sockets`` keep engineio's own behaviour). WebSocket connections are lean when
    the server's ``_async['websocket']`` driver is ``lean_ws.LeanDriver`` (``fanout.make_websocket_class``)."""
    if not isinstance(eio.create_queue(), PacketQueue):  # a server that does not make its own
        eio.create_queue = lambda *args, **kwargs: PacketQueue()
    eio.lean_pings = PingScheduler(eio)
    eio_async_socket.AsyncSocket.schedule_ping = _schedule_ping
