"""``chat-server create-admin`` / ``set-role`` next to a running chat-server on the same
``CHAT_DATA_DIR``: they use its embedded PostgreSQL, never start a second Redis on its socket
path, and leave both running; a second server on the directory is refused; a server started
after one was killed stops the Redis the killed one left behind."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
import redis.asyncio as aioredis
from pgserver.utils import PostmasterInfo

from tests.services.base import REPO_ROOT, free_port, port_open, wait_until
from tests.support import ChatNode, ServerHarness, make_room

pytestmark = pytest.mark.heavy

START_BOUND_S = 120  # initdb and a first PostgreSQL start on a busy 2-core machine


def _embedded_env(harness: ServerHarness, data_dir: Path) -> dict[str, str]:
    # empty URLs: chat-server starts (or finds) its embedded services under data_dir
    return {**os.environ, **harness.env, "DATABASE_URL": "", "REDIS_URL": "", "CHAT_DATA_DIR": str(data_dir)}


def _spawn_embedded(harness: ServerHarness, data_dir: Path) -> ChatNode:
    port = free_port()
    log_path = data_dir / "server.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "server"], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env={**_embedded_env(harness, data_dir), "CHAT_HOST": "127.0.0.1", "CHAT_PORT": str(port)},
                                start_new_session=True)
    node = ChatNode(f"http://127.0.0.1:{port}", process=proc, port=port)
    harness.nodes.append(node)
    wait_until(lambda: port_open(port), START_BOUND_S, "chat-server", proc, log_path)
    return node


async def _chat_server(harness: ServerHarness, data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "server", *args], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=START_BOUND_S, env={**_embedded_env(harness, data_dir), **env},
    )


async def _redis_pid(sock: Path) -> int:
    """A new connection to the socket, and the pid of the redis-server that answers on it."""
    client = aioredis.Redis(unix_socket_path=str(sock), socket_connect_timeout=2, socket_timeout=2)
    try:
        return int((await client.info("server"))["process_id"])
    finally:
        await client.aclose()


def _postmaster_pid(data_dir: Path) -> int:
    info = PostmasterInfo.read_from_pgdata((data_dir / "postgres").resolve())
    assert info is not None and info.is_running()
    return int(info.pid)


async def test_admin_commands_next_to_a_running_server_use_its_embedded_services_and_leave_them_running(
        harness: ServerHarness) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="chat-cli-"))  # short: a unix socket path is capped at 107 bytes
    sock = data_dir / "redis" / "redis.sock"
    node: ChatNode | None = None
    try:
        node = _spawn_embedded(harness, data_dir)
        redis_pid, pg_pid = await _redis_pid(sock), _postmaster_pid(data_dir)
        bob = await harness.user(node)

        created = await _chat_server(harness, data_dir, "create-admin", "boss_cli", CHAT_ADMIN_PASSWORD="admin password 1")
        assert created.returncode == 0 and "created admin boss_cli" in created.stdout, created.stderr
        promoted = await _chat_server(harness, data_dir, "set-role", bob.user["username"], "staff")
        assert promoted.returncode == 0 and f"{bob.user['username']} is now staff" in promoted.stdout, promoted.stderr

        # the same embedded Redis and PostgreSQL, still reachable by new connections
        assert sock.is_socket()
        assert await _redis_pid(sock) == redis_pid
        assert _postmaster_pid(data_dir) == pg_pid
        async with harness.http.get(node.base_url + "/readyz") as r:
            assert r.status == 200, await r.text()

        # and the running server still works end to end: registration, login, a socket that sends
        async with harness.http.post(node.base_url + "/api/v1/auth/login",
                                     json={"username": "boss_cli", "password": "admin password 1"}) as r:
            body = await r.json()
            assert r.status == 200 and body["user"]["role"] == "admin", body
        carol, dave = await harness.user(node), await harness.user(node)
        room_id = await make_room(carol, dave)
        await carol.connect()
        await dave.connect()
        sent = await carol.send(room_id, "still here")
        got = await dave.log.wait_for("message", lambda m: m["id"] == sent["id"], timeout=5)
        assert got["body"] == "still here"

        # a second server on the same directory is refused, and takes nothing over
        second = await _chat_server(harness, data_dir, CHAT_HOST="127.0.0.1", CHAT_PORT=str(free_port()))
        assert second.returncode == 1 and "belongs to a running chat-server" in second.stderr, second.stderr
        assert sock.is_socket() and await _redis_pid(sock) == redis_pid
        assert _postmaster_pid(data_dir) == pg_pid
    finally:
        await harness.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def _end(pid: int, sig: signal.Signals) -> None:
    """End a process a test's server started and left behind (by its pid), bounded."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(sig)
        proc.wait(15)
    except psutil.NoSuchProcess:
        pass


async def test_a_server_started_after_one_was_killed_stops_the_redis_it_left_and_owns_the_directory(
        harness: ServerHarness) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="chat-cli-"))
    sock = data_dir / "redis" / "redis.sock"
    orphan_pid = 0
    try:
        killed = _spawn_embedded(harness, data_dir)
        orphan_pid = await _redis_pid(sock)
        assert killed.process is not None
        killed.process.kill()  # SIGKILL: no clean-up runs; its redis-server (own session) lives on
        await asyncio.to_thread(killed.process.wait, 15)
        assert await _redis_pid(sock) == orphan_pid

        node = _spawn_embedded(harness, data_dir)
        owner_pid = await _redis_pid(sock)
        assert owner_pid != orphan_pid
        await asyncio.to_thread(wait_until, lambda: not psutil.pid_exists(orphan_pid), 10, "the orphaned redis-server to exit")
        async with harness.http.get(node.base_url + "/readyz") as r:
            assert r.status == 200, await r.text()
        await harness.user(node)
    finally:
        info = PostmasterInfo.read_from_pgdata((data_dir / "postgres").resolve())
        pg_pid = info.pid if info is not None and info.is_running() else 0
        await harness.close()
        # the killed server's handle on PostgreSQL stays counted, so nobody stops it: end it here
        for pid, sig in ((orphan_pid, signal.SIGTERM), (pg_pid, signal.SIGINT)):
            if pid:
                await asyncio.to_thread(_end, pid, sig)
        shutil.rmtree(data_dir, ignore_errors=True)
