"""Graceful stop of a chat-server node: drain its Socket.IO sessions within a bound.

Where it runs: ``create_app`` registers ``graceful_shutdown(sio)`` as an ``on_shutdown`` handler.
On SIGTERM aiohttp's runner first closes the listening socket and the idle keep-alive connections
(the node stops accepting), then calls ``on_shutdown`` handlers, then gives the requests still
open ``shutdown_timeout`` seconds, then runs ``cleanup_ctx`` (batcher, presence, pools).

``drain(sio, bound_s)`` in between:

1. refuses Engine.IO handshakes that still reach this node (a request that was already read);
   a refused handshake is an HTTP error to the client, which retries - through the balancer,
   elsewhere;
2. waits for the Socket.IO event handlers already running, so their acks go out: a client
   whose ``message:send`` was in flight gets its ``{ok: true, message}`` before the socket ends;
3. ends every session by closing its *transport* after what is queued for it has been written
   (acks, broadcasts): the WebSocket is closed, a waiting long-poll is answered and the session
   forgotten. No Engine.IO CLOSE and no Socket.IO DISCONNECT packet is sent on purpose - both
   mean "the server sent you away" and clients then do not reconnect; a lost transport makes
   socket.io clients reconnect on their own, to another node, and ``sync`` from their cursors.

Every phase shares one deadline (``bound_s``). Handlers still running at the deadline are left
to the cleanup that follows (their database work ends within ``DB_TIMEOUT_S``; a client that
misses an ack resends with the same ``client_id`` and gets the stored message, never a copy).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import socketio
from aiohttp import web
from engineio import packet as eio_packet

log = logging.getLogger(__name__)

DRAIN_BOUND_S = 5.0  # inside compose's stop_grace_period (15 s) with aiohttp's shutdown_timeout (3 s) after it
HANDLER_SHARE = 0.6  # of the bound for in-flight handlers; the rest flushes and closes the sessions


@dataclass(frozen=True, slots=True)
class DrainReport:
    sessions_closed: int  # Engine.IO sessions this node ended
    handlers_finished: int  # event handlers that completed (and sent their acks) during the drain
    handlers_running: int  # event handlers still running at the deadline, left to the cleanup


def graceful_shutdown(sio: socketio.AsyncServer, bound_s: float = DRAIN_BOUND_S) -> Callable[[web.Application], Awaitable[None]]:
    """An ``app.on_shutdown`` handler that drains ``sio`` and logs what it did."""

    async def on_shutdown(app: web.Application) -> None:
        try:
            report = await drain(sio, bound_s)
        except Exception:  # the stop goes on regardless: cleanup still closes everything
            log.exception("shutdown: draining Socket.IO sessions failed")
            return
        log.info("shutdown: drained %d sessions; %d handlers finished, %d still running",
                 report.sessions_closed, report.handlers_finished, report.handlers_running)

    return on_shutdown


async def drain(sio: socketio.AsyncServer, bound_s: float = DRAIN_BOUND_S) -> DrainReport:
    """Finish in-flight acks, then end every session so its client reconnects elsewhere."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + bound_s
    _refuse_handshakes(sio)
    finished = await _wait_for_handlers(sio, start + bound_s * HANDLER_SHARE)
    # a session already closing (its client went away) has told its writer to stop: nothing
    # would drain its queue, so waiting on it would only burn the bound
    sockets = [s for s in list(sio.eio.sockets.values()) if not (s.closed or s.closing)]
    await asyncio.gather(*(_end_session(sio, s, deadline) for s in sockets))
    return DrainReport(sessions_closed=len(sockets), handlers_finished=finished, handlers_running=len(_event_tasks(sio)))


def _refuse_handshakes(sio: socketio.AsyncServer) -> None:
    async def refuse(eio_sid: str, environ: dict[str, Any]) -> bool:
        return False  # engineio answers 401; clients retry the handshake like any transport error

    # replaces python-socketio's own Engine.IO connect hook: no new session starts from here on
    sio.eio.on("connect", refuse)


def _event_tasks(sio: socketio.AsyncServer) -> set[asyncio.Task[Any]]:
    """The tasks running this server's Socket.IO event handlers.

    python-socketio runs each event (with ``async_handlers``, the default) in a task of its own
    through ``AsyncServer._handle_event_internal(server, ...)`` and keeps no per-server registry
    of them, so they are found among the loop's tasks by that coroutine and its ``server``
    argument (several servers can share a loop in tests)."""
    found: set[asyncio.Task[Any]] = set()
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        if getattr(coro, "__qualname__", "").endswith("._handle_event_internal"):
            frame = getattr(coro, "cr_frame", None)
            if frame is not None and frame.f_locals.get("server") is sio:
                found.add(task)
    return found


async def _wait_for_handlers(sio: socketio.AsyncServer, until: float) -> int:
    """Wait for running handlers - and any that start meanwhile - until none is left or ``until``."""
    loop = asyncio.get_running_loop()
    seen: set[asyncio.Task[Any]] = set()
    while (pending := _event_tasks(sio)) and (left := until - loop.time()) > 0:
        seen |= pending
        await asyncio.wait(pending, timeout=left)
    return sum(1 for t in seen if t.done())


async def _end_session(sio: socketio.AsyncServer, sock: Any, deadline: float) -> None:
    """Write what is queued for the session, then drop its transport."""
    if sock.upgraded:
        # the WebSocket writer sends everything queued before this, then closes the WebSocket
        sock.queue.put_nowait(None)
        flush = True
    else:
        # a waiting long-poll returns everything queued now. Without one nothing more can reach
        # this client: its next poll finds the listener closed (and the balancer, another node)
        flush = bool(sock.queue._getters)  # asyncio.Queue has no public "is anyone waiting"
        if flush:
            sock.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
    left = deadline - asyncio.get_running_loop().time()
    if flush and left > 0:
        try:
            await asyncio.wait_for(sock.queue.join(), left)
        except TimeoutError:
            pass  # a client that stopped reading; it is dropped all the same
    # abort: no CLOSE packet (see the module docstring). Runs the server's disconnect handler,
    # unless the transport ended first (closing is idempotent)
    await sock.close(wait=False, abort=True, reason=sio.eio.reason.TRANSPORT_CLOSE)
    sio.eio.sockets.pop(sock.sid, None)
