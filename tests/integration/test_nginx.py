"""Debian's nginx with the repo's nginx.conf in front of two chat-server processes: clients on
each node chat over WebSocket and over sticky long-polling, see each other's presence, and when
one node stops its clients reconnect through nginx to the other and miss nothing."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import socketio

from tests.services.base import REPO_ROOT, ManagedProcess, free_port, port_open, wait_until
from tests.support import ChatNode, Client, ServerHarness

LOCAL_ADDRS = [f"127.0.0.{i}" for i in range(2, 40)]


def render_conf(tmp: Path, port: int, nodes: list[ChatNode], archive_port: int) -> Path:
    conf = (REPO_ROOT / "nginx.conf").read_text()
    servers = "\n".join(f"        server 127.0.0.1:{n.port} max_fails=1 fail_timeout=5s;" for n in nodes)
    conf = re.sub(r"(upstream chat \{\n\s+hash \$remote_addr consistent;\n)(?:\s+server chat-server-\d:8080[^\n]*\n)+",
                  lambda m: m.group(1) + servers + "\n", conf)
    conf = conf.replace("server chat-archive:8090;", f"server 127.0.0.1:{archive_port};")
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{port};")
    conf = conf.replace("pid /tmp/nginx.pid;", f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;")
    conf = conf.replace("worker_processes auto;", "worker_processes 1;")
    conf = conf.replace("http {", f"http {{\n    client_body_temp_path {tmp}/body;\n    proxy_temp_path {tmp}/proxy;")
    conf = conf.replace("rate=1r/s", "rate=100r/s").replace("rate=20r/s", "rate=200r/s")
    path = tmp / "nginx.conf"
    path.write_text(conf)
    return path


@pytest.fixture
def nginx(harness: ServerHarness, tmp_path: Path) -> Iterator[tuple[str, list[ChatNode]]]:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(exe).exists(), "nginx is missing: scripts/bootstrap.sh test installs Debian's nginx-light"
    nodes = [harness.spawn_node(CHAT_NODE_ID="node-a"), harness.spawn_node(CHAT_NODE_ID="node-b")]
    port = free_port()
    conf = render_conf(tmp_path, port, nodes, free_port())
    test = subprocess.run([exe, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    proc = ManagedProcess("nginx", [exe, "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"], tmp_path / "nginx.out")
    p = proc.spawn()
    wait_until(lambda: port_open(port), 15, "nginx", p, tmp_path / "nginx.out")
    yield f"http://127.0.0.1:{port}", nodes
    proc.stop()


def session_from(addr: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(addr, 0)))


async def addr_for(base: str, node_id: str) -> str:
    """A loopback source address that nginx's consistent hash sends to ``node_id``."""
    for addr in LOCAL_ADDRS:
        async with session_from(addr) as s, s.get(base + "/healthz") as r:
            if (await r.json())["node"] == node_id:
                return addr
    raise AssertionError(f"no source address maps to {node_id}")


async def connect_via(client: Client, base: str, addr: str, transports: list[str]) -> tuple[socketio.AsyncClient, aiohttp.ClientSession]:
    session = session_from(addr)
    sio = socketio.AsyncClient(http_session=session, reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)
    for name in ("message", "presence", "typing"):
        sio.on(name, client._recorder(name))
    await sio.connect(base, auth=lambda: {"token": client.tokens["access_token"]}, transports=transports, wait_timeout=10)
    client.sio = sio
    return sio, session


async def test_through_nginx_websocket_and_sticky_polling_then_failover(harness: ServerHarness,
                                                                         nginx: tuple[str, list[ChatNode]]) -> None:
    base, nodes = nginx
    alice = await harness.user(nodes[0])
    bob = await harness.user(nodes[0])
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "edge", "kind": "public", "members": [bob.id]}, expect=201)
    room_id = body["room"]["id"]
    addr_a, addr_b = await addr_for(base, "node-a"), await addr_for(base, "node-b")
    sio_a, sess_a = await connect_via(alice, base, addr_a, ["websocket"])
    sio_b, sess_b = await connect_via(bob, base, addr_b, ["polling"])  # long-polling: every request must stick
    try:
        await alice.log.wait_for("presence", lambda e: e["user_id"] == bob.id and e["status"] == "online", timeout=10)
        m1 = await alice.send(room_id, "ws on node a")
        await bob.log.wait_for("message", lambda m: m["id"] == m1["id"], timeout=10)
        m2 = await bob.send(room_id, "polling on node b")
        await alice.log.wait_for("message", lambda m: m["id"] == m2["id"], timeout=10)
        last_seen_by_bob = max(m["seq"] for m in bob.log.all("message"))
        # node b stops (gracefully): bob reconnects through nginx to node a
        await harness.stop_node(nodes[1])
        missed = [await alice.send(room_id, f"while b restarts {i}") for i in range(3)]
        for _ in range(100):
            if sio_b.connected and bob.sio is sio_b:
                break
            await asyncio.sleep(0.1)
        assert sio_b.connected
        ack = await bob.emit("sync", {"cursors": {str(room_id): last_seen_by_bob}})
        replay = ack["rooms"][str(room_id)]["messages"]
        live = [m for m in bob.log.all("message") if m["seq"] > last_seen_by_bob]
        got = {m["id"] for m in replay} | {m["id"] for m in live}
        assert {m["id"] for m in missed} <= got  # nothing missed
        assert [m["seq"] for m in replay] == sorted({m["seq"] for m in replay})  # no duplicate in the replay
        after = await alice.send(room_id, "after failover")
        await bob.log.wait_for("message", lambda m: m["id"] == after["id"], timeout=10)
        assert len([m for m in bob.log.all("message") if m["id"] == after["id"]]) == 1
    finally:
        for sio, sess in ((sio_a, sess_a), (sio_b, sess_b)):
            await sio.disconnect()
            await sess.close()
        alice.sio = bob.sio = None
