"""Our own WebSocket connection for Engine.IO sessions (``server/realtime/lean_ws.py``), frame by frame.

A bare Socket.IO server (chat-server's ``ChatSocketServer`` with its WebSocket driver and lean
sessions, no application handlers), and a raw
RFC 6455 client written here, so every byte either way is the test's: close codes, fragmented
messages, oversized messages, WebSocket PING/PONG, unmasked client frames, half-open clients,
and what an idle connection keeps alive once the handshake is done.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import json
import os
import socket
import struct
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
from aiohttp import web

from server.realtime.fanout import make_websocket_class
from server.realtime.lean_socket import end_session, install_lean_sockets, text_frame
from server.realtime.peers import ChatSocketServer

MAX_PAYLOAD = 1000  # bytes of one message (engineio's max_http_buffer_size)
BOUND_S = 10.0  # a bound on a hang, not a speed requirement


@dataclass
class Served:
    sio: socketio.AsyncServer
    port: int
    disconnected: list[str] = field(default_factory=list)
    requests: list[weakref.ref[web.Request]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serve(ping_interval: float = 30.0, ping_timeout: float = 30.0) -> AsyncIterator[Served]:
    sio = ChatSocketServer(async_mode="aiohttp", ping_interval=ping_interval, ping_timeout=ping_timeout,
                           max_http_buffer_size=MAX_PAYLOAD)
    install_lean_sockets(sio.eio)
    sio.eio._async = {**sio.eio._async, "websocket": make_websocket_class(False)}

    @web.middleware
    async def remember(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        served.requests.append(weakref.ref(request))
        return await handler(request)

    app = web.Application(middlewares=[remember])
    sio.attach(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    served = Served(sio, int(runner.addresses[0][1]))

    @sio.on("echo")
    async def echo(sid: str, data: Any) -> None:
        await sio.emit("echoed", data, to=sid)

    @sio.on("disconnect")
    async def on_disconnect(sid: str, *_: Any) -> None:
        served.disconnected.append(sid)

    try:
        yield served
    finally:
        await runner.cleanup()


async def until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(BOUND_S):
        while not cond():
            await asyncio.sleep(0.02)


class RawClient:
    """A WebSocket client that writes frames exactly as told (masked unless told otherwise)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, query: str = "EIO=4&transport=websocket", extra_headers: str = "") -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(f"GET /socket.io/?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                     f"{extra_headers}\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND_S)
        assert head.startswith(b"HTTP/1.1 101 "), head
        accept = base64.b64encode(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        assert b"Sec-WebSocket-Accept: " + accept + b"\r\n" in head, head
        return cls(reader, writer)

    @classmethod
    async def connected(cls, port: int) -> RawClient:
        """Engine.IO open and Socket.IO connected on namespace ``/``."""
        client = await cls.connect(port)
        assert (await client.text()).startswith("0{")
        client.send(1, b"40")
        assert (await client.text()).startswith("40{")
        return client

    def send(self, opcode: int, payload: bytes, fin: bool = True, mask: bool = True, rsv: int = 0,
             length: int | None = None) -> None:
        n = len(payload) if length is None else length
        first = (0x80 if fin else 0) | rsv | opcode
        masked = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", first, masked | n)
        elif n < 65536:
            head = struct.pack("!BBH", first, masked | 126, n)
        else:
            head = struct.pack("!BBQ", first, masked | 127, n)
        if mask:
            key = os.urandom(4)
            body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            self.writer.write(head + key + body)
        else:
            self.writer.write(head + payload)

    async def frame(self) -> tuple[int, bytes]:
        """The next frame (opcode, payload); server frames are never masked."""
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), BOUND_S)
        assert not b1 & 0x80, "a masked server frame"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def text(self) -> str:
        while True:
            opcode, payload = await self.frame()
            if opcode == 1:
                return payload.decode()
            assert opcode in (9, 10), (opcode, payload)

    async def close_code(self) -> int:
        """Frames until the server's CLOSE: its code; then the server ends the connection."""
        while True:
            opcode, payload = await self.frame()
            if opcode == 8:
                code = int(struct.unpack("!H", payload[:2])[0])
                assert await asyncio.wait_for(self.reader.read(), BOUND_S) == b""  # then EOF
                return code

    def close(self) -> None:
        self.writer.close()


def echo(text: str) -> bytes:
    return ('42' + json.dumps(["echo", text])).encode()


# --- fragments and control frames ------------------------------------------------------------------


async def test_fragmented_message_is_reassembled_with_a_ping_between_its_fragments() -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        whole = echo("in three parts")
        c.send(1, whole[:5], fin=False)
        c.send(9, b"are you there")  # a control frame may come between fragments
        c.send(0, whole[5:12], fin=False)
        c.send(0, whole[12:])
        assert await c.frame() == (10, b"are you there")  # PONG with the PING's payload
        assert await c.text() == '42["echoed","in three parts"]'
        c.close()


async def test_websocket_ping_is_answered_with_pong_and_the_session_stays() -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        c.send(9, b"")
        assert await c.frame() == (10, b"")
        c.send(10, b"unsolicited")  # an unsolicited PONG is ignored
        c.send(1, echo("still here"))
        assert await c.text() == '42["echoed","still here"]'
        assert not s.disconnected
        c.close()


# --- limits and protocol errors -------------------------------------------------------------------


async def test_message_longer_than_max_payload_is_closed_with_1009_before_it_is_read() -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        # only the header of a frame announcing MAX_PAYLOAD + 1 bytes: the server does not wait for the body
        c.send(1, b"", length=MAX_PAYLOAD + 1)
        assert await c.close_code() == 1009
        await until(lambda: len(s.disconnected) == 1 and not s.sio.eio.sockets)


async def test_fragments_adding_up_past_max_payload_are_closed_with_1009() -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        c.send(1, b"4" + b"x" * (MAX_PAYLOAD // 2), fin=False)
        c.send(0, b"x" * (MAX_PAYLOAD // 2))
        assert await c.close_code() == 1009
        await until(lambda: len(s.disconnected) == 1)


async def test_message_of_exactly_max_payload_is_accepted() -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        body = "y" * (MAX_PAYLOAD - len(echo("")))
        c.send(1, echo(body))
        assert await c.text() == '42["echoed","' + body + '"]'
        c.close()


async def test_unmasked_client_frame_is_closed_with_1002() -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        c.send(1, echo("not masked"), mask=False)
        assert await c.close_code() == 1002
        await until(lambda: len(s.disconnected) == 1 and not s.sio.eio.sockets)


@pytest.mark.parametrize("bad", [
    pytest.param({"opcode": 1, "payload": b"42", "rsv": 0x40}, id="reserved-bit"),
    pytest.param({"opcode": 3, "payload": b"42"}, id="unknown-opcode"),
    pytest.param({"opcode": 0, "payload": b"42"}, id="continuation-without-a-first-frame"),
    pytest.param({"opcode": 9, "payload": b"p" * 126}, id="control-frame-over-125-bytes"),
    pytest.param({"opcode": 9, "payload": b"p", "fin": False}, id="fragmented-control-frame"),
])
async def test_frame_breaking_rfc6455_is_closed_with_1002(bad: dict[str, Any]) -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        c.send(**bad)
        assert await c.close_code() == 1002
        await until(lambda: len(s.disconnected) == 1)


async def test_new_message_inside_a_fragmented_one_is_closed_with_1002() -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        c.send(1, b"42", fin=False)
        c.send(1, echo("interleaved"))
        assert await c.close_code() == 1002


async def test_text_that_is_not_utf8_is_closed_with_1007() -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        c.send(1, b'42["echo","\xff\xfe"]')
        assert await c.close_code() == 1007
        await until(lambda: len(s.disconnected) == 1)


# --- close codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 4321])
async def test_client_close_is_answered_with_its_code_and_ends_the_session(code: int) -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        c.send(8, struct.pack("!H", code) + b"bye")
        assert await c.close_code() == code
        await until(lambda: len(s.disconnected) == 1 and not s.sio.eio.sockets)


@pytest.mark.parametrize("body", [b"\x03", struct.pack("!H", 1005), struct.pack("!H", 999), struct.pack("!H", 2000)],
                         ids=["one-byte", "reserved-1005", "below-1000", "unassigned-2000"])
async def test_client_close_with_a_code_a_peer_may_not_send_is_answered_with_1002(body: bytes) -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        c.send(8, body)
        assert await c.close_code() == 1002


async def test_session_ended_by_the_server_sends_close_packet_then_close_1000() -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        [sock] = s.sio.eio.sockets.values()
        await end_session(sock, s.sio.eio.reason.SERVER_DISCONNECT)
        assert await c.text() == "1"  # Engine.IO CLOSE, then the WebSocket's
        assert await c.close_code() == 1000
        await until(lambda: len(s.disconnected) == 1 and not s.sio.eio.sockets)


async def test_engineio_close_packet_from_the_client_ends_the_session_with_close_1000() -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        c.send(1, b"1")
        assert await c.close_code() == 1000
        await until(lambda: len(s.disconnected) == 1 and not s.sio.eio.sockets)


# --- half-open clients ----------------------------------------------------------------------------


async def test_client_that_half_closes_its_side_ends_its_session() -> None:
    async with serve() as s:
        c = await RawClient.connected(s.port)
        c.writer.write_eof()  # FIN without a CLOSE frame; still reading
        assert await asyncio.wait_for(c.reader.read(), BOUND_S) == b""
        await until(lambda: len(s.disconnected) == 1 and not s.sio.eio.sockets)


async def test_half_open_client_that_neither_reads_nor_answers_is_dropped_after_the_ping_timeout() -> None:
    async with serve(ping_interval=0.2, ping_timeout=0.3) as s:
        # a peer that vanished without a FIN: the connection stays open, nothing comes back
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", s.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        c = RawClient(reader, writer)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND_S)
        assert (await c.text()).startswith("0{")
        c.send(1, b"40")
        assert (await c.text()).startswith("40{")
        writer.transport.pause_reading()  # from now on it reads nothing and answers nothing
        await until(lambda: len(s.disconnected) == 1 and not s.sio.eio.sockets)
        # and the server let go of the connection itself: reading again finds its end
        writer.transport.resume_reading()
        with contextlib.suppress(ConnectionResetError):
            async with asyncio.timeout(BOUND_S):
                while await reader.read(65536):
                    pass
        c.close()


# --- writing ----------------------------------------------------------------------------------------


async def test_a_burst_written_in_one_turn_to_a_client_that_does_not_read_meets_the_transports_back_pressure() -> None:
    """Frames written in one turn of the loop wait to leave in one send, but only up to a bound:
    past it they reach the transport, whose flow control makes ``write`` refuse (so the
    session's queue, under its cap, holds the rest) once the client stops reading."""
    async with serve() as s:
        client = await RawClient.connected(s.port)  # and never reads again
        (sock,) = s.sio.eio.sockets.values()
        ws = sock.queue._ws
        wire = text_frame(b"4" + b"x" * 4096)
        ceiling = 64 * 1024 * 1024  # far past the kernel's buffers for one connection
        written = 0
        while written < ceiling and ws.write(wire):  # nothing awaited: one turn of the loop
            written += len(wire)
        assert written < ceiling, "every frame was taken: the client's back-pressure never reached the writer"
        client.close()


# --- what an idle connection keeps -----------------------------------------------------------------


async def test_idle_websocket_keeps_neither_the_upgrade_request_nor_a_task() -> None:
    async with serve() as s:
        tasks_before = len(asyncio.all_tasks())
        clients = [await RawClient.connected(s.port) for _ in range(20)]
        for c in clients:  # every session works
            c.send(1, echo("hi"))
            assert await c.text() == '42["echoed","hi"]'
        await asyncio.sleep(0.05)
        gc.collect()
        alive = [r for r in s.requests if r() is not None]
        assert not alive, f"{len(alive)} upgrade requests still referenced"
        # only tasks the server shares (engineio's service task, the ping scheduler, ...): none
        # per connection, where aiohttp kept a handler task for each of the 20
        assert len(asyncio.all_tasks()) - tasks_before < 5
        for c in clients:
            c.close()


async def test_session_keeps_only_where_it_came_from_not_the_cookies_or_credentials_of_its_handshake() -> None:
    async with serve() as s:
        c = await RawClient.connect(s.port, extra_headers="Cookie: session=secret\r\nAuthorization: Bearer secret\r\n"
                                                          "User-Agent: probe/1\r\n")
        assert (await c.text()).startswith("0{")
        [eio_sid] = s.sio.eio.sockets
        environ = s.sio.environ[eio_sid]
        assert environ["HTTP_USER_AGENT"] == "probe/1" and environ["QUERY_STRING"].startswith("EIO=4")
        assert not {"HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_SEC_WEBSOCKET_KEY", "aiohttp.request",
                    "wsgi.input"} & set(environ)
        c.close()
