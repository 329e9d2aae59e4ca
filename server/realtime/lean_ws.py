"""Engine.IO's WebSocket transport on a connection of our own: RFC 6455 over the bare transport.

Why: behind an aiohttp ``WebSocketResponse`` every idle connection keeps the parsed upgrade
request and its headers, aiohttp's request handler, the handler task with its chain of
suspended coroutines (aiohttp's, engineio's, ours), the response with its WebSocket reader,
writer and their buffers: ~15 KiB per connection before Engine.IO adds its own. Node's engine.io
keeps about a third of that.

How: aiohttp still parses the upgrade request and routes it to engineio, so every check of the
handshake stays where it was (EIO version, transport, sid, ``cors_allowed_origins``, the
per-address cap of ``peers``, the ``connect`` event). engineio then hands the request to its
``_async['websocket']`` driver, which here is ``LeanDriver``: it validates the RFC 6455 handshake,
writes the 101 answer itself, gives the transport to a ``LeanWebSocket`` (``set_protocol``: every
later byte is ours), tells aiohttp's protocol that its connection is gone (``connection_lost``,
asyncio's protocol interface: aiohttp forgets the connection and never writes to or closes it
again) and returns; the whole handler chain, the request and aiohttp's per-connection objects are
then garbage. An idle connection keeps the transport, one ``LeanWebSocket`` (``__slots__``, no
buffer while no partial frame is pending), engineio's socket and its ``PacketQueue``.

Framing (RFC 6455 section 5), what aiohttp's reader and writer did for us before:

- client frames must be masked (1002 otherwise), no reserved bits (no extension is negotiated:
  permessage-deflate offers are ignored, so a client compresses nothing), known opcodes only;
- control frames at most 125 bytes and never fragmented (1002); PING answered with PONG;
  CLOSE answered with the same code, then the connection is closed (a code a peer may not send,
  or a 1-byte body: 1002);
- fragmented messages are reassembled; a continuation without a first frame, or a new message
  inside a fragmented one, is 1002; text must be UTF-8 (1007);
- a message longer than ``max_http_buffer_size`` (engineio's maxPayload) closes with 1009, decided
  from the frame headers, before its payload is buffered.

Engine.IO over it: the same behaviour as engineio's ``_websocket_handler`` with our lean queue
(``lean_socket``): the upgrade probe exchange (``2probe``/``3probe``, NOOP to the pending poll,
``5``), then every packet goes to ``socket.receive`` in order (one task while packets wait, none
otherwise; past ``INBOX_PAUSE`` waiting packets the transport stops reading until they are
handled). A packet that does not decode, or of no Engine.IO type, closes the connection. When
the connection ends, the packets received before it are handled, then the session is closed
(its disconnect handler runs) and forgotten.

Writing: ``PacketQueue`` writes to ``LeanWebSocket`` while the transport takes more
(``pause_writing``/``resume_writing``: asyncio's flow control, high-water mark 64 KiB) and queues
otherwise; its cap on what is queued drops a slow consumer (``abort``). Nothing follows an
Engine.IO CLOSE packet: the WebSocket is closed (1000) right after it, however the session was
ended (engineio's own ping check, ``disconnect``, ours), so a peer that never answers cannot keep
the connection once its session is gone. Silent clients, a
half-open connection among them, are aborted by ``PingScheduler`` ``ping_timeout`` after an
unanswered PING; a client that half-closes (EOF) ends its session at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
import socket
import struct
from typing import Any

from aiohttp import web
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

log = logging.getLogger(__name__)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3

# close codes (RFC 6455 section 7.4.1)
NORMAL = 1000
PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
MESSAGE_TOO_BIG = 1009

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

_EIO_CLOSE = b"1"  # Engine.IO's CLOSE packet: the session is over, the WebSocket closes after it

INBOX_PAUSE = 32  # packets waiting for ``socket.receive``: stop reading the transport past this
CORK_BYTES = 16 * 1024  # frames held for one send at the end of a turn of the loop, at most

# what the connection is doing with Engine.IO packets
_PROBE, _UPGRADE, _OPEN, _DONE = 0, 1, 2, 3

_H2 = struct.Struct("!BB").pack
_H4 = struct.Struct("!BBH").pack
_H10 = struct.Struct("!BBQ").pack
_U16 = struct.Struct("!H").unpack_from
_U64 = struct.Struct("!Q").unpack_from


def frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """``payload`` as one final, unmasked server frame."""
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        return _H2(first, n) + payload
    if n < 65536:
        return _H4(first, 126, n) + payload
    return _H10(first, 127, n) + payload


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return frame(struct.pack("!H", code) + reason, OP_CLOSE)


def unmask(payload: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` repeated (RFC 6455 section 5.3), as one big-int
    operation (C speed without a C extension)."""
    n = len(payload)
    if n == 0:
        return b""
    key = (bytes(mask) * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def valid_close_code(code: int) -> bool:
    """A code a peer may send in a CLOSE frame (RFC 6455 section 7.4; 1004-1006 and 1015 are
    reserved, 1016-2999 unassigned)."""
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) or 3000 <= code <= 4999


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def handshake_key(headers: Any) -> str | None:
    """The client's ``Sec-WebSocket-Key`` if ``headers`` are a valid version-13 upgrade
    request (RFC 6455 section 4.2.1), else None."""
    if "websocket" not in headers.get("Upgrade", "").lower():
        return None
    if "upgrade" not in [t.strip() for t in headers.get("Connection", "").lower().split(",")]:
        return None
    if headers.get("Sec-WebSocket-Version", "") != "13":
        return None
    key = headers.get("Sec-WebSocket-Key", "").strip()
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except (binascii.Error, ValueError):
        return None
    return key


class LeanWebSocket(asyncio.Protocol):
    """One WebSocket connection carrying one Engine.IO session (module docstring)."""

    __slots__ = ("_buf", "_drain", "_error", "_frag", "_frag_len", "_frag_op", "_inbox", "_out", "_out_bytes", "_reader",
                 "_rpaused", "_state", "closed", "lost", "max_size", "paused", "sock", "transport")

    def __init__(self, sock: Any, max_size: int, upgrading: bool) -> None:
        self.sock = sock  # engineio's socket of the session
        self.transport: Any = None  # set by connection_made
        self.max_size = max_size  # bytes of one message, its fragments together
        self._state = _PROBE if upgrading else _OPEN
        self._buf: bytearray | None = None  # the start of a frame not complete yet
        self._frag: list[bytes] | None = None  # the fragments of a message not complete yet
        self._frag_len = 0
        self._frag_op = 0
        # packets received, not yet handed to ``socket.receive``; None ends the session
        self._inbox: list[Any] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._rpaused = False  # reading paused: too many packets wait for ``socket.receive``
        self._drain: asyncio.Future[None] | None = None
        self._out: list[bytes] | None = None  # frames written in this turn of the loop, not yet sent
        self._out_bytes = 0  # their length
        self.paused = False  # the transport applies back-pressure
        self.closed = False  # a CLOSE frame was sent, or the connection aborted: nothing more is written
        self.lost = False
        self._error = False  # closed for a protocol error (the session's disconnect reason)

    # --- asyncio's protocol interface ------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        buf = self._buf
        if buf is not None:
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
        pos = self._parse(view)
        if self.closed:
            self._buf = None
        elif pos < len(view):
            self._buf = bytearray(view[pos:]) if buf is None or pos else buf
        else:
            self._buf = None

    def eof_received(self) -> bool:
        return False  # a half-closed client is gone: close the connection (the session ends)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.closed = True
        self._buf = self._frag = self._out = None
        waiter, self._drain = self._drain, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("connection lost"))
        if self._state == _OPEN:
            self._state = _DONE
            self._enqueue(None)
        else:
            # an upgrade that did not complete: the polling session goes on
            if self._state != _DONE:
                self.sock.upgrading = False
            self._state = _DONE
            self._forget()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        waiter, self._drain = self._drain, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- what ``PacketQueue`` writes through -----------------------------------------------------

    def can_write(self) -> bool:
        return not (self.closed or self.paused)

    def write(self, wire: bytes) -> bool:
        """Write ``wire`` (whole frames) now if the transport takes more; False otherwise."""
        if self.closed or self.paused:
            return False
        self._put(wire)
        return True

    def write_payload(self, payload: bytes, binary: bool) -> bool:
        if self.closed or self.paused:
            return False
        self._put(frame(payload, OP_BINARY if binary else OP_TEXT))
        if payload == _EIO_CLOSE and not binary:
            self.close_with(NORMAL)
        return True

    def _put(self, data: bytes) -> None:
        """Send ``data`` (whole frames) at the end of this turn of the event loop, together with
        the frames written after it meanwhile: a message's event and its ack (written by one
        handler, one after the other) leave in one ``send`` system call instead of two, which
        on loopback costs the sender's core the receiver's TCP work as well. At most
        ``CORK_BYTES`` wait so: past that they go to the transport at once, whose flow control
        (``pause_writing``) then holds further packets in the session's queue, under its cap,
        as without the wait."""
        out = self._out
        if out is None:
            if len(data) >= CORK_BYTES:
                self.transport.write(data)
                return
            self._out = [data]
            self._out_bytes = len(data)
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            out.append(data)
            self._out_bytes += len(data)
            if self._out_bytes >= CORK_BYTES:
                self._flush()

    def _flush(self) -> None:
        out, self._out = self._out, None
        if out and not self.lost:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    async def wait_writable(self) -> None:
        """Return once the transport takes more; ConnectionResetError once the connection is gone."""
        if self.lost:
            raise ConnectionResetError("connection lost")
        if not self.paused:
            return
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drain)

    async def send(self, data: str | bytes) -> None:
        if self.closed:
            raise ConnectionResetError("connection closed")
        if isinstance(data, str):
            self._put(frame(data.encode()))
            if data == "1":
                self.close_with(NORMAL)
        else:
            self._put(frame(data, OP_BINARY))

    async def close(self) -> None:
        self.close_with(NORMAL)

    def close_with(self, code: int) -> None:
        """Send CLOSE with ``code`` (after what is written already) and close the connection."""
        if self.closed:
            return
        self.closed = True
        out, self._out = self._out, None
        self.transport.write(b"".join(out) + close_frame(code) if out else close_frame(code))
        self.transport.close()

    def _fail(self, code: int) -> None:
        self._error = True
        self.close_with(code)

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake (a peer that does not read)."""
        self.closed = True
        self._out = None
        self.transport.abort()

    # --- frames -------------------------------------------------------------------------------

    def _parse(self, data: bytes | bytearray) -> int:
        """Handle the complete frames at the start of ``data``; the offset of what is left."""
        pos, end = 0, len(data)
        while end - pos >= 2 and not self.closed:
            b0, b1 = data[pos], data[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if end - pos < 4:
                    break
                n = _U16(data, pos + 2)[0]
                head = 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = _U64(data, pos + 2)[0]
                head = 10
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if b0 & 0x70 or not b1 & 0x80:  # reserved bits (no extension), or an unmasked client frame
                self._fail(PROTOCOL_ERROR)
                break
            if opcode >= 8:
                if not fin or n > 125 or opcode > OP_PONG:
                    self._fail(PROTOCOL_ERROR)
                    break
            elif opcode > OP_BINARY or (opcode == OP_CONT) != (self._frag is not None):
                self._fail(PROTOCOL_ERROR)
                break
            elif self._frag_len + n > self.max_size:
                self._fail(MESSAGE_TOO_BIG)  # before buffering what it would take
                break
            stop = pos + head + 4 + n
            if end < stop:
                break
            payload = unmask(data[pos + head + 4:stop], data[pos + head:pos + head + 4])
            pos = stop
            if opcode >= 8:
                self._control(opcode, payload)
            elif not fin:
                if self._frag is None:
                    self._frag, self._frag_op = [payload], opcode
                else:
                    self._frag.append(payload)
                self._frag_len += n
            elif self._frag is not None:
                self._frag.append(payload)
                whole, opcode = b"".join(self._frag), self._frag_op
                self._frag, self._frag_len = None, 0
                self._message(opcode, whole)
            else:
                self._message(opcode, payload)
        return pos

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self._put(frame(payload, OP_PONG))
        elif opcode == OP_CLOSE:
            if not payload:
                self.close_with(NORMAL)
                return
            if len(payload) < 2:
                self._fail(PROTOCOL_ERROR)
                return
            code = _U16(payload)[0]
            if not valid_close_code(code):
                self._fail(PROTOCOL_ERROR)
                return
            try:
                payload[2:].decode()
            except UnicodeDecodeError:
                self._fail(INVALID_DATA)
                return
            self.close_with(code)  # echoed, as RFC 6455 section 5.5.1 suggests

    def _message(self, opcode: int, payload: bytes) -> None:
        data: str | bytes
        if opcode == OP_TEXT:
            try:
                data = payload.decode()
            except UnicodeDecodeError:
                self._fail(INVALID_DATA)
                return
            if self._reader is None and self._state == _OPEN and data[:1] == "4":
                # an Engine.IO MESSAGE with nothing of this connection ahead of it: a plain
                # Socket.IO event starts its handler now, without a reader task (plain_events)
                dispatch = getattr(self.sock.server, "plain_dispatch", None)
                if dispatch is not None and dispatch(self.sock, data[1:]):
                    return
        else:
            data = payload
        try:
            pkt = eio_packet.Packet(encoded_packet=data)
            valid = 0 <= pkt.packet_type < len(eio_packet.packet_names)
        except Exception:
            valid = False
        sock = self.sock
        state = self._state
        if state == _OPEN:
            if not valid:  # engineio would fail on it further in (an IndexError for type 7, say)
                sock.server.logger.info("%s: invalid packet, closing the WebSocket", sock.sid)
                self._fail(PROTOCOL_ERROR)
                return
            self._enqueue(pkt)
        elif state == _PROBE:
            if valid and pkt.packet_type == eio_packet.PING and pkt.data == "probe":
                self._put(frame(eio_packet.Packet(eio_packet.PONG, data="probe").encode().encode()))
                sock.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
                self._state = _UPGRADE
            else:
                sock.server.logger.info("%s: Failed websocket upgrade, no PING packet", sock.sid)
                self._fail_upgrade()
        elif state == _UPGRADE:
            if valid and pkt.packet_type == eio_packet.UPGRADE:
                sock.upgraded = True
                sock.upgrading = False
                self._state = _OPEN
                sock.queue.attach(self)
                sock.server.logger.info("%s: Upgrade to websocket successful", sock.sid)
            else:
                sock.server.logger.info("%s: Failed websocket upgrade, expected UPGRADE packet", sock.sid)
                sock.upgraded = False
                self._fail_upgrade()

    def _fail_upgrade(self) -> None:
        self.sock.upgrading = False
        self._state = _DONE
        self.close_with(NORMAL)

    # --- packets to the session -------------------------------------------------------------------

    def _enqueue(self, pkt: Any) -> None:
        inbox = self._inbox
        if inbox is None:
            self._inbox = inbox = [pkt]
        else:
            inbox.append(pkt)
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())
        elif len(inbox) >= INBOX_PAUSE and not (self.lost or self._rpaused):
            self._rpaused = True
            self.transport.pause_reading()

    async def _read(self) -> None:
        sock = self.sock
        reason = sock.server.reason.TRANSPORT_CLOSE
        try:
            while self._inbox:
                pkt = self._inbox.pop(0)
                if not self._inbox:
                    self._inbox = None
                    if self._rpaused:
                        self._rpaused = False
                        if not self.lost:
                            self.transport.resume_reading()
                if pkt is None:  # the connection ended
                    break
                try:
                    await sock.receive(pkt)
                except eio_exceptions.UnknownPacketError:
                    pass  # a valid type a client does not send (OPEN, PING, NOOP): ignored, as by engineio
                except eio_exceptions.SocketIsClosedError:
                    break
                except Exception:
                    sock.server.logger.exception("Unknown receive error")
                if sock.closed:  # the client sent CLOSE (or the server closed the session meanwhile)
                    break
            else:
                return  # all handled; the next packet starts a new reader
            if self._error:
                reason = sock.server.reason.TRANSPORT_ERROR
            self._state = _DONE
            self._inbox = None
            await sock.queue.finish()  # what is queued, then CLOSE
            await sock.close(wait=False, abort=True, reason=reason)
            self._forget()
        finally:
            self._reader = None

    def _forget(self) -> None:
        sock = self.sock
        sockets = sock.server.sockets
        if sock.closed and sockets.get(sock.sid) is sock:
            del sockets[sock.sid]


class _TakenOver(web.StreamResponse):
    """What aiohttp gets back for a connection it no longer has: nothing to write (aiohttp treats
    the ``ConnectionResetError`` as a client that went away)."""

    async def prepare(self, request: web.BaseRequest) -> Any:
        raise ConnectionResetError("the WebSocket connection was taken over")


class LeanDriver:
    """engineio's WebSocket driver (``server._async['websocket']``) answering with a
    ``LeanWebSocket``. ``handler`` is the session's bound ``_websocket_handler``; it is not called
    (the connection's packets go to the socket's ``receive`` directly)."""

    def __init__(self, handler: Any, server: Any) -> None:
        self.sock = handler.__self__
        self.server = server

    async def __call__(self, environ: dict[str, Any]) -> web.StreamResponse:
        request: web.Request = environ["aiohttp.request"]
        sock = self.sock
        upgrading = bool(sock.connected)
        key = handshake_key(request.headers)
        transport = request.transport
        if key is None or transport is None or transport.is_closing() \
                or transport.get_extra_info("sslcontext") is not None or transport.get_extra_info("socket") is None:
            # what aiohttp's WebSocketResponse answers to a bad handshake; a session opened by
            # this request (not an upgrade of a polling one) ends with it
            if not upgrading:
                await sock.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)
                self.server.sockets.pop(sock.sid, None)
            return web.Response(status=400, headers={"Sec-WebSocket-Version": "13"},
                                text="Bad WebSocket handshake")
        # the connection goes on over a duplicate of its socket: aiohttp's transport is closed
        # (aiohttp sees a client that went away and forgets the connection), which closes its
        # descriptor only; the TCP connection stays open on ours. The client sends nothing before
        # the 101 answer (RFC 6455 section 4.1), which only the new transport writes
        raw = transport.get_extra_info("socket")
        dup = socket.socket(fileno=os.dup(raw.fileno()))
        transport.close()
        ws = LeanWebSocket(sock, self.server.max_http_buffer_size, upgrading)
        try:
            new_transport, _ = await asyncio.get_running_loop().connect_accepted_socket(lambda: ws, sock=dup)
        except BaseException:
            dup.close()
            raise
        new_transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n")
        if upgrading:
            sock.upgrading = True  # hold packet sends during the upgrade
        else:
            sock.connected = True
            sock.upgraded = True
            sock.queue.attach(ws)  # the OPEN packet, queued by engineio, goes first
        return _TakenOver(status=101)  # what aiohttp's access log shows for it
