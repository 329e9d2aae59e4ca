"""A lean Engine.IO 4 / Socket.IO 5 client over a raw RFC 6455 WebSocket (asyncio Protocol).

Why not aiohttp's or ``websockets``' client: at 100k+ received frames/s on one core the
per-frame cost of a general client (a message object, a queue hand-off and a coroutine switch
per frame) makes the load generator the bottleneck. Here ``data_received`` parses every frame
in the chunk in place and takes one clock reading per chunk; per frame it only checks the
Engine.IO/Socket.IO prefix and, for ``message`` events, reads the send timestamp from the body.

Protocol handled:
- HTTP/1.1 upgrade with ``Sec-WebSocket-Key``; the ``Sec-WebSocket-Accept`` answer is verified.
- Frames: server frames unmasked (a masked one is a protocol error), 7/16/64-bit lengths,
  fragmented messages reassembled, ping answered with pong, close answered with close.
  Client frames are masked with a fresh key each (RFC 6455 section 5.3).
- Engine.IO: open packet ``0{...}``, server ping ``2`` answered with pong ``3``, close ``1``.
- Socket.IO: connect ``40`` + auth JSON, refusal ``44{...}``, events ``42[...]``, acked
  events ``42<id>[...]``, acks ``43<id>[...]``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import time
from array import array
from collections.abc import Callable
from typing import Any, cast

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MESSAGE_EVENT = b'42["message"'
BODY_KEY = b'"body":'


class ProtocolError(RuntimeError):
    pass


def _mask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if n == 0:
        return b""
    # XOR as one big integer: far cheaper in Python than a byte loop
    keystream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(keystream, "big")).to_bytes(n, "big")


def encode_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return header + key + _mask(payload, key)


class SioConnection(asyncio.Protocol):
    """One Socket.IO client connection on namespace ``/``.

    ``received`` counts ``message`` events whose send timestamp is at or after ``since_ns``
    (older ones are a previous step's backlog and count as ``late``); their latencies go to
    ``samples`` (nanoseconds).
    """

    def __init__(self, host: str, port: int, token: str | None, samples: array[int] | None) -> None:
        self.host, self.port, self.token, self.samples = host, port, token, samples
        self.transport: asyncio.Transport | None = None
        self.key = base64.b64encode(os.urandom(16))
        self.upgraded = False
        self.buf = b""
        self.frag: list[bytes] = []
        self.frag_op = 0
        self.acks: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self.ack_callbacks: dict[int, Callable[[int, bytes], None]] = {}  # open-loop sends
        self.next_ack = 1
        self.received = 0
        self.late = 0
        self.since_ns = 0
        self.pings = 0
        self.lost = False  # the connection closed before the client closed it (e.g. a server ping timeout)
        self.closing = False
        loop = asyncio.get_running_loop()
        self.connected: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport = self.transport
        transport.write(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            b"Host: " + f"{self.host}:{self.port}".encode() + b"\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + self.key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = not self.closing
        err = ConnectionError(f"connection lost: {exc}")
        if not self.connected.done():
            self.connected.set_exception(err)
        for fut in self.acks.values():
            if not fut.done():
                fut.set_exception(err)
        self.acks.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()  # one reading per chunk: every frame in it arrived together
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self._check_upgrade(buf[:end])
            buf = buf[end + 4 :]
            self.upgraded = True
        n, i = len(buf), 0
        while n - i >= 2:
            b0, ln = buf[i], buf[i + 1]
            if ln & 0x80:
                self._fail("masked frame from the server")
                return
            h = 2
            if ln == 126:
                if n - i < 4:
                    break
                ln, h = int.from_bytes(buf[i + 2 : i + 4], "big"), 4
            elif ln == 127:
                if n - i < 10:
                    break
                ln, h = int.from_bytes(buf[i + 2 : i + 10], "big"), 10
            end = i + h + ln
            if end > n:
                break
            payload = buf[i + h : end]
            i = end
            op = b0 & 0x0F
            if op >= 0x8:  # control frames are never fragmented
                self._control(op, payload)
                continue
            if not b0 & 0x80 or op == 0:  # fragment: collect until FIN
                if op:
                    self.frag_op = op
                self.frag.append(payload)
                if not b0 & 0x80:
                    continue
                payload, op, self.frag = b"".join(self.frag), self.frag_op, []
            if op == 0x1:
                self._packet(payload, now)
        self.buf = buf[i:] if i < n else b""

    # --- parsing ------------------------------------------------------------------------------

    def _check_upgrade(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 101"):
            self._fail(f"upgrade refused: {lines[0]!r}")
            return
        expected = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest())
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        if headers.get(b"sec-websocket-accept") != expected:
            self._fail("bad Sec-WebSocket-Accept")

    def _control(self, op: int, payload: bytes) -> None:
        if op == 0x9:  # ping
            self._write(payload, 0xA)
        elif op == 0x8:  # close: answer and let the server close the TCP connection
            self._write(payload[:2], 0x8)
            if self.transport is not None:
                self.transport.close()

    def _packet(self, p: bytes, now: int) -> None:
        if p.startswith(MESSAGE_EVENT):
            j = p.find(BODY_KEY)
            if j < 0:
                return
            j += 7
            if p[j] == 0x20:  # json.dumps without compact separators
                j += 1
            if p[j + 1] != 0x74:  # body starts with "t<send ns>"
                return
            ts = int(p[j + 2 : p.index(b" ", j + 2)])
            if ts < self.since_ns:
                self.late += 1
                return
            self.received += 1
            if self.samples is not None:
                self.samples.append(now - ts)
        elif p == b"2":
            self.pings += 1
            self.send_text(b"3")
        elif p.startswith(b"43"):
            k = 2
            while 0x30 <= p[k] <= 0x39:
                k += 1
            ack_id = int(p[2:k])
            fut = self.acks.pop(ack_id, None)
            if fut is not None and not fut.done():
                fut.set_result((now, p[k:]))
            cb = self.ack_callbacks.pop(ack_id, None)
            if cb is not None:
                cb(now, p[k:])
        elif p.startswith(b"0{"):
            auth = json.dumps({"token": self.token}) if self.token else ""
            self.send_text(b"40" + auth.encode())
        elif p.startswith(b"40"):
            if not self.connected.done():
                self.connected.set_result(None)
        elif p.startswith(b"44"):
            self._fail(f"connect refused: {p[2:200]!r}")
        elif p == b"1":
            self._fail("server closed the Engine.IO session")
        # other events (presence, member:joined, ...) are not measured

    def _fail(self, why: str) -> None:
        if not self.connected.done():
            self.connected.set_exception(ProtocolError(why))
        if self.transport is not None:
            self.transport.close()

    # --- sending ------------------------------------------------------------------------------

    def _write(self, payload: bytes, opcode: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(payload, opcode))

    def send_text(self, text: bytes) -> None:
        self._write(text, 0x1)

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        self.send_text(b"42" + json.dumps([event, payload], separators=(",", ":")).encode())

    def emit_acked(self, event: str, payload: dict[str, Any], on_ack: Callable[[int, bytes], None]) -> None:
        """Emit with an ack without waiting: ``on_ack(receipt ns, ack bytes)`` runs on arrival."""
        ack_id = self.next_ack
        self.next_ack += 1
        self.ack_callbacks[ack_id] = on_ack
        self.send_text(f"42{ack_id}".encode() + json.dumps([event, payload], separators=(",", ":")).encode())

    async def call(self, event: str, payload: dict[str, Any], timeout: float = 10.0) -> tuple[int, bytes]:
        """Emit with an ack; returns (receipt time in ns, the ack's JSON array as bytes)."""
        ack_id = self.next_ack
        self.next_ack += 1
        fut: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = fut
        self.send_text(f"42{ack_id}".encode() + json.dumps([event, payload], separators=(",", ":")).encode())
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.acks.pop(ack_id, None)

    async def close(self, timeout: float = 2.0) -> None:
        self.closing = True
        if self.transport is None or self.transport.is_closing():
            return
        self.send_text(b"41")  # Socket.IO disconnect, then a WebSocket close
        self._write((1000).to_bytes(2, "big"), 0x8)
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            self.transport.close()


async def connect(host: str, port: int, token: str | None, samples: array[int] | None,
                  timeout: float = 30.0, rcvbuf: int | None = None, source: str | None = None) -> SioConnection:
    """Open the TCP connection, upgrade, and complete the Socket.IO connect on ``/``. ``rcvbuf``:
    the socket's receive buffer, set before connecting (a stalled client's buffers fill fast).
    ``source``: the local address to connect from (another loopback address, 127.0.0.2, ...:
    each has its own ephemeral port range towards the server)."""
    loop = asyncio.get_running_loop()
    sock = None
    if rcvbuf is not None or source is not None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            # the port is chosen at connect, per (source, destination): not limited to one range per source
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        except BaseException:
            sock.close()
            raise
    _, proto = await asyncio.wait_for(
        loop.create_connection(lambda: SioConnection(host, port, token, samples),
                               *((None, None) if sock is not None else (host, port)), sock=sock), timeout)
    try:
        await asyncio.wait_for(asyncio.shield(proto.connected), timeout)
    except BaseException:
        if proto.transport is not None:
            proto.transport.close()
        raise
    return proto


IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux, <linux/in.h>


def ack_ok(ack: bytes) -> bool:
    return b'"ok":true' in ack or b'"ok": true' in ack
