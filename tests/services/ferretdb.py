"""FerretDB 1.x, a MongoDB wire-protocol server, on its SQLite backend (``scripts/fetch-ferretdb.sh``)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from .base import CACHE_DIR, REPO_ROOT, ManagedProcess, Service, free_port, port_open, wait_until

BINARY = CACHE_DIR / "bin" / "ferretdb"


def ensure_binary() -> Path:
    if not BINARY.exists():
        subprocess.run([str(REPO_ROOT / "scripts" / "fetch-ferretdb.sh")], check=True)
    return BINARY


class FerretService(Service):
    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="chat-ferret-"))
        self.port = port or free_port()
        self.debug_port = free_port()
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> FerretService:
        data = self.base_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self._proc = ManagedProcess("ferretdb", [
            str(ensure_binary()), "--handler=sqlite", f"--sqlite-url=file:{data}/",
            f"--listen-addr=127.0.0.1:{self.port}", f"--debug-addr=127.0.0.1:{self.debug_port}",
            f"--state-dir={self.base_dir}", "--telemetry=disable", "--log-level=warn",
        ], self.base_dir / "ferretdb.log")
        proc = self._proc.spawn()
        wait_until(lambda: port_open(self.port), 30, "ferretdb", proc, self.base_dir / "ferretdb.log")
        return self

