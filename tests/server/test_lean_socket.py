"""The lean Engine.IO session parts: the packet queue keeps asyncio.Queue's semantics."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from engineio import packet as eio_packet

from server.realtime.fanout import make_websocket_class
from server.realtime.lean_socket import PacketQueue, install_lean_sockets


async def test_packet_queue_is_fifo_and_wakes_a_waiting_getter() -> None:
    q = PacketQueue()
    assert q.empty() and q.qsize() == 0 and not q._getters
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert q._getters  # a reader is waiting (what fanout and shutdown look at)
    q.put_nowait("a")
    await q.put("b")
    assert await getter == "a"
    assert not q._getters
    assert q.qsize() == 1 and q.get_nowait() == "b"
    assert q.empty()
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


async def test_packet_queue_join_waits_for_task_done() -> None:
    q = PacketQueue()
    await q.join()  # nothing put: returns at once
    q.put_nowait(1)
    q.put_nowait(2)
    joined = asyncio.ensure_future(q.join())
    q.get_nowait()
    q.task_done()
    await asyncio.sleep(0)
    assert not joined.done()
    q.get_nowait()
    q.task_done()
    await joined
    with pytest.raises(ValueError):
        q.task_done()


async def test_packet_queue_cancelled_getter_leaves_items_for_the_next() -> None:
    q = PacketQueue()
    first = asyncio.ensure_future(q.get())
    second = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    first.cancel()
    q.put_nowait("x")  # woke ``first`` (already cancelled): the item must reach ``second``
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "x"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await q.get()
    assert not q._getters


# --- the WebSocket handler and the shared ping task, on a bare Socket.IO server ----------------


async def _serve(ping_interval: float, ping_timeout: float) -> tuple[Any, Any, list[str]]:
    sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=ping_interval, ping_timeout=ping_timeout)
    install_lean_sockets(sio.eio)
    sio.eio._async = {**sio.eio._async, "websocket": make_websocket_class(False)}
    disconnected: list[str] = []

    @sio.on("echo")
    async def echo(sid: str, data: Any) -> Any:
        await sio.emit("echoed", data, to=sid)
        return data

    @sio.on("disconnect")
    async def on_disconnect(sid: str, *_: Any) -> None:
        disconnected.append(sid)

    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return sio, runner, disconnected


def _port(runner: Any) -> int:
    return int(runner.addresses[0][1])


async def _until(cond: Any, what: str) -> None:
    async with asyncio.timeout(15):  # a bound on a hang, not a speed requirement
        while not cond():
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]])
async def test_client_answering_pings_stays_and_gets_every_packet(transports: list[str]) -> None:
    sio, runner, disconnected = await _serve(ping_interval=0.2, ping_timeout=2)
    client = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    client.on("echoed", got.append)
    try:
        await client.connect(f"http://127.0.0.1:{_port(runner)}", transports=transports)
        await _until(lambda: client.transport() == "websocket", "websocket")
        [sock] = sio.eio.sockets.values()
        pings: list[float] = []
        send = sock.send

        async def counting_send(pkt: Any) -> None:
            if pkt.packet_type == eio_packet.PING:
                pings.append(sock.last_ping)
            await send(pkt)

        sock.send = counting_send
        # three PINGs, each after the client answered the previous one (engineio schedules the
        # next PING on the PONG)
        await _until(lambda: len(pings) >= 3, "three pings")
        assert isinstance(sock.queue, PacketQueue) and sock.queue._ws is not None  # written directly
        for i in range(50):
            assert await client.call("echo", {"i": i}) == {"i": i}
        await _until(lambda: len(got) == 50, "echoes")
        assert got == [{"i": i} for i in range(50)]  # in order
        assert client.connected and not disconnected
    finally:
        await client.disconnect()
        await runner.cleanup()


async def test_client_that_stops_answering_pings_is_dropped() -> None:
    sio, runner, disconnected = await _serve(ping_interval=0.2, ping_timeout=0.3)
    try:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"http://127.0.0.1:{_port(runner)}/socket.io/?EIO=4&transport=websocket")
            opened = await ws.receive_str()
            assert opened.startswith("0")
            await ws.send_str("40")
            assert (await ws.receive_str()).startswith("40")
            frames = []
            async with asyncio.timeout(15):
                async for msg in ws:  # never answers the PING: the server must end the connection
                    frames.append(msg.data)
            assert "2" in frames
            await _until(lambda: bool(disconnected), "disconnect handler")
            await _until(lambda: not sio.eio.sockets, "session forgotten")
    finally:
        await runner.cleanup()


async def test_packets_queued_before_attach_go_first() -> None:
    sent: list[str] = []

    class FakeWs:
        _sock = None

        async def send(self, data: str) -> None:
            sent.append(data)

        async def close(self) -> None:
            sent.append("<close>")

    q = PacketQueue()
    q.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, "a"))
    q.attach(FakeWs())
    q.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, "b"))  # behind the backlog, not ahead of it
    await q.finish()
    assert sent == ["4a", "4b", "<close>"]
    await q.join()


async def test_a_second_end_queued_by_a_shutdown_around_the_sessions_own_end_is_not_waited_for() -> None:
    """A node's shutdown flushes each session (``put_nowait(None)``, then ``join``) while the
    session may be ending on its own (its client closed: ``finish``). Whether the shutdown's end
    comes while the session's is being written or after it, ``join`` returns at once: nothing
    would ever write an item queued behind the end."""
    sent: list[str] = []
    release = asyncio.Event()

    class SlowWs:
        _sock = None

        def write_payload(self, payload: bytes, binary: bool) -> bool:
            return False  # the transport is busy: packets wait in the queue for the drain task

        async def send(self, data: str) -> None:
            await release.wait()
            sent.append(data)

        async def close(self) -> None:
            sent.append("<close>")

    q = PacketQueue()
    q.attach(SlowWs())
    q.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, "a"))
    finishing = asyncio.create_task(q.finish())  # the session's own end, behind "a"
    await asyncio.sleep(0)
    q.put_nowait(None)  # the shutdown's, while "a" is being written
    release.set()
    await asyncio.wait_for(finishing, 1)
    await asyncio.wait_for(q.join(), 1)
    q.put_nowait(None)  # the shutdown's, after the end
    q.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, "late"))
    await asyncio.wait_for(q.join(), 1)
    assert sent == ["4a", "<close>"] and q.qsize() == 0


async def test_an_end_queued_by_a_shutdown_after_the_connection_died_is_not_waited_for() -> None:
    class DeadWs:
        _sock = None
        closed = False

        def write_payload(self, payload: bytes, binary: bool) -> bool:
            return False

        async def send(self, data: str) -> None:
            raise ConnectionResetError

        async def close(self) -> None:
            self.closed = True

    ws = DeadWs()
    q = PacketQueue()
    q.attach(ws)
    q.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, "a"))  # its write finds the connection dead
    await asyncio.wait_for(q.join(), 1)
    assert ws.closed
    q.put_nowait(None)  # a node's shutdown flushing the session
    await asyncio.wait_for(q.join(), 1)
    assert q.qsize() == 0


def _awaiting(coro: Any) -> list[str]:
    """The names of the coroutines suspended in a chain, outermost first."""
    names = []
    while coro is not None and hasattr(coro, "cr_code"):
        names.append(coro.cr_code.co_name)
        coro = coro.cr_await
    return names


async def test_websocket_handlers_run_without_middleware_frames_around_them() -> None:
    from server.transport.middleware import error_middleware, passing_websockets, security_headers_middleware

    tasks: list[asyncio.Task[Any]] = []

    async def ws_handler(request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # suspended here for the socket's life
        await ws.close()
        return ws

    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<p>hi</p>", content_type="text/html")

    app = web.Application(middlewares=[passing_websockets(security_headers_middleware), passing_websockets(error_middleware)])
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                await ws.send_str("ping")  # the handler is past prepare(); look while the socket is open
                for _ in range(50):
                    chain = _awaiting(tasks[0].get_coro()) if tasks else []
                    if "ws_handler" in chain:
                        break
                    await asyncio.sleep(0.01)
                await ws.close()
            async with s.get(f"http://127.0.0.1:{port}/") as r:
                # plain requests still pass both middlewares
                assert r.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in r.headers
    finally:
        await runner.cleanup()
    assert "ws_handler" in chain
    assert not {"security_headers_middleware", "error_middleware"} & set(chain), chain


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frame_is_byte_for_byte_what_aiohttps_writer_sends(size: int) -> None:
    from aiohttp._websocket.writer import WebSocketWriter

    from server.realtime.lean_socket import text_frame

    class Transport:
        def __init__(self) -> None:
            self.out = bytearray()

        def write(self, data: bytes) -> None:
            self.out += data

        def is_closing(self) -> bool:
            return False

    transport = Transport()
    writer = WebSocketWriter(None, transport, use_mask=False)  # type: ignore[arg-type]
    payload = bytes(i % 251 for i in range(size))
    writer._write_websocket_frame(payload, 0x1, 0)
    assert text_frame(payload) == bytes(transport.out)
