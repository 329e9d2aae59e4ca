"""Limits on what a peer can hold on a node before (or instead of) being a useful client.

An Engine.IO session costs the node memory and a file descriptor from its handshake on, before
the client has sent Socket.IO's CONNECT (and so before any token was checked). Stock engineio
and python-socketio bound neither the number of sessions one address opens nor how long a
session may stay without a namespace. Here:

- **Per address**: at most ``max_per_address`` concurrent sessions per client address
  (``address_of``: the address ``transport.http.client_ip`` resolves, ``TRUSTED_PROXIES``
  respected). The handshake past the cap is answered ``429`` with the API's JSON error body
  (``rate_limited``), on both transports, before a session exists. A handshake reserves its
  place before anything is awaited, so concurrent handshakes cannot overshoot the cap; the
  place is the session's once engineio opens it, and is given back at its disconnect (or when
  the handshake fails).
- **Connect deadline**: a session with no namespace connected ``connect_timeout_s`` after it
  opened is closed (CLOSE, then its WebSocket; Node's socket.io has the same ``connectTimeout``).
  A connect refused for a bad token leaves the session without a namespace: it is closed too.
  One timer per session, only until its deadline (no task).
- **Slow consumers**: every session's queue is a ``PacketQueue`` with the server's
  ``QueueLimits`` (``lean_socket``).

Through the libraries' own seams, not run-time patches: ``socketio.AsyncServer`` builds its
Engine.IO server from ``_engineio_server_class()``; ``handle_request`` is the coroutine aiohttp
routes every Engine.IO request to; socketio's handlers of the Engine.IO ``connect`` and
``disconnect`` events are where a session begins and ends for both libraries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import engineio
from aiohttp import web

from chatcore.errors import RateLimited

from .lean_socket import PacketQueue, QueueLimits, end_session
from .plain_events import PlainEvents

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5.0  # what a refused handshake is told to wait: a session elsewhere has to end first

_RESERVED = web.RequestKey("peers_reserved_address", str)  # the address whose place a handshake holds


def peer_address(request: web.Request) -> str:
    return request.remote or "unknown"


class ChatEngineServer(engineio.AsyncServer):
    """engineio's server with a cap on concurrent sessions per client address and bounded
    session queues. Without ``configure_peers`` it behaves as engineio's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_per_address: int | None = None
        self.address_of: Callable[[web.Request], str] = peer_address
        self.queue_limits: QueueLimits | None = None
        self.on_refused: Callable[[], object] | None = None  # a metric
        self._held: dict[str, int] = {}  # address -> sessions open (or handshakes under way)
        self._address_of_sid: dict[str, str] = {}

    def configure_peers(self, max_per_address: int, address_of: Callable[[web.Request], str],
                        queue_limits: QueueLimits) -> None:
        self.max_per_address = max_per_address
        self.address_of = address_of
        self.queue_limits = queue_limits

    def count_to(self, on_drop: Callable[[], object], on_refused: Callable[[], object]) -> None:
        """Report slow-consumer drops and refused handshakes (to the node's metrics)."""
        if self.queue_limits is not None:
            self.queue_limits.on_drop = on_drop
        self.on_refused = on_refused

    def create_queue(self, *args: Any, **kwargs: Any) -> PacketQueue:
        return PacketQueue(self.queue_limits)

    def sessions_of(self, address: str) -> int:
        return self._held.get(address, 0)

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        request = args[0]
        sid = request.query.get("sid")
        if sid is not None:
            sock = self.sockets.get(sid)
            if sock is not None and sock.closed:
                # a session the server closed (connect deadline, slow consumer) is forgotten here:
                # engineio's POST path reaches its ``_get_socket``, whose KeyError for a closed
                # session it does not catch (a 500); unknown, it answers 400 like any ended session
                del self.sockets[sid]
        cap = self.max_per_address
        if cap is None or request.method != "GET" or sid is not None:
            return await super().handle_request(*args, **kwargs)
        # a handshake: a new session unless refused
        address = self.address_of(request)
        held = self._held.get(address, 0)
        if held >= cap:
            if self.on_refused is not None:
                self.on_refused()
            log.info("refused an Engine.IO handshake from %s: %d sessions open", address, held)
            err = RateLimited(f"too many connections from this address (at most {cap})", retry_after=RETRY_AFTER_S)
            return web.json_response({"error": err.to_dict()}, status=err.status,
                                     headers={"Retry-After": str(int(RETRY_AFTER_S))})
        self._held[address] = held + 1
        request[_RESERVED] = address
        try:
            return await super().handle_request(*args, **kwargs)
        finally:
            if _RESERVED in request:  # no session took the place: a failed or refused handshake
                del request[_RESERVED]
                self._release(address)

    def session_opened(self, eio_sid: str, environ: dict[str, Any]) -> None:
        sock = self.sockets.get(eio_sid)
        if sock is not None and isinstance(sock.queue, PacketQueue):
            sock.queue.bind(sock)
        request = environ.get("aiohttp.request")
        if request is not None and _RESERVED in request:
            self._address_of_sid[eio_sid] = request[_RESERVED]
            del request[_RESERVED]  # the session holds the place now, until its disconnect

    def session_closed(self, eio_sid: str) -> None:
        address = self._address_of_sid.pop(eio_sid, None)
        if address is not None:
            self._release(address)

    def _release(self, address: str) -> None:
        held = self._held.get(address, 0) - 1
        if held > 0:
            self._held[address] = held
        else:
            self._held.pop(address, None)


# what of the handshake's environ a session keeps: where it came from and what it asked for;
# not the request object, its body stream, the WebSocket handshake headers or the cookies and
# credentials the client sent (a session's authentication is its Socket.IO CONNECT token)
KEPT_ENVIRON_KEYS = frozenset({"REQUEST_METHOD", "QUERY_STRING", "PATH_INFO", "REMOTE_ADDR", "SERVER_PROTOCOL",
                               "HTTP_HOST", "HTTP_ORIGIN", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR",
                               "HTTP_X_FORWARDED_PROTO", "HTTP_X_REAL_IP", "wsgi.url_scheme"})


def slim_environ(environ: dict[str, Any]) -> dict[str, Any]:
    """The part of ``environ`` a session keeps for its life (``KEPT_ENVIRON_KEYS``)."""
    return {k: v for k, v in environ.items() if k in KEPT_ENVIRON_KEYS}


class ChatSocketServer(PlainEvents):
    """python-socketio's server on a ``ChatEngineServer``, closing sessions that have not
    connected a namespace ``connect_timeout_s`` after they opened (``None``: never)."""

    eio: ChatEngineServer

    def __init__(self, *args: Any, connect_timeout_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connect_timeout_s = connect_timeout_s

    def _engineio_server_class(self) -> type[ChatEngineServer]:
        return ChatEngineServer

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        self.eio.session_opened(eio_sid, environ)
        ret = await super()._handle_eio_connect(eio_sid, environ)
        if eio_sid in self.environ:
            # python-socketio keeps the handshake's environ for the session's life (``get_environ``,
            # the namespace connect handlers); whole, it would keep aiohttp's request, its
            # headers and its protocol alive per connection
            self.environ[eio_sid] = slim_environ(environ)
        if self.connect_timeout_s is not None:
            asyncio.get_running_loop().call_later(self.connect_timeout_s, self._connect_deadline, eio_sid)
        return ret

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self.eio.session_closed(eio_sid)
        if reason == self.eio.reason.CLIENT_DISCONNECT:
            self._answer_pending_poll(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)

    def _answer_pending_poll(self, eio_sid: str) -> None:
        """A polling client that sent CLOSE (a logout's ``session:ended``, a closed tab) still has
        its long-poll GET open; engineio queues nothing on such a close, so that request held a
        connection and a handler for ping_interval + ping_timeout (45 s), and an in-process
        shutdown waited for it. The end-of-queue marker answers it now (an empty payload)."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is not None and not sock.upgraded and isinstance(sock.queue, PacketQueue):
            sock.queue.put_nowait(None)

    def namespace_connected(self, eio_sid: str) -> bool:
        """True while the session has a namespace connected (or a connect under way)."""
        return any(self.manager.sid_from_eio_sid(eio_sid, ns) is not None for ns in list(self.manager.get_namespaces()))

    def _connect_deadline(self, eio_sid: str) -> None:
        sock = self.eio.sockets.get(eio_sid)
        if sock is None or sock.closing or sock.closed or self.namespace_connected(eio_sid):
            return
        log.info("%s: no Socket.IO CONNECT within %.1f s, closing the session", eio_sid, self.connect_timeout_s)
        self.eio.start_background_task(end_session, sock, self.eio.reason.SERVER_DISCONNECT)
