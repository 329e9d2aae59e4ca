"""FerretDB 1.x, a MongoDB wire-protocol server (``scripts/fetch-ferretdb.sh``), on SQLite or PostgreSQL."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from .base import CACHE_DIR, REPO_ROOT, ManagedProcess, Service, ServiceError, free_port, port_open, wait_until

BINARY = CACHE_DIR / "bin" / "ferretdb"

Backend = Literal["sqlite", "postgresql"]


def ensure_binary() -> Path:
    if not BINARY.exists():
        subprocess.run([str(REPO_ROOT / "scripts" / "fetch-ferretdb.sh")], check=True)
    return BINARY


class FerretService(Service):
    """FerretDB on ``backend``: ``sqlite`` (the default) or ``postgresql`` (``postgresql_url``,
    a database that exists, e.g. on a ``PostgresService``).

    SQLite is what the test suite runs: a directory of files, nothing else to start, and the
    archive's tests hold a few thousand documents. It pushes no filter down to the indexes
    chat-archive creates, so every query reads and decodes the whole collection: fine for tests,
    meaningless for latency at a large archive. On PostgreSQL each collection is a table with one
    ``jsonb`` column, ``createIndexes`` builds real btree expression indexes, and top-level
    equality filters (``{room_id: 5}``) run in PostgreSQL as ``_jsonb->'room_id' @> '5'``; but
    ``@>`` is not a btree operator, so those indexes serve only unique checks on insert, and a
    query is a sequential scan of the table in PostgreSQL (ranges, ``$in``, ``$regex`` and sorts
    then run in FerretDB). ``bench/archive_query.py`` measures both that and the same queries with
    GIN indexes on the pushed-down fields, added in PostgreSQL beside FerretDB's own."""

    def __init__(self, base_dir: Path | None = None, port: int | None = None, backend: Backend = "sqlite",
                 postgresql_url: str | None = None) -> None:
        if (backend == "postgresql") != (postgresql_url is not None):
            raise ServiceError("postgresql_url goes with backend='postgresql', and only with it")
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="chat-ferret-"))
        self.port = port or free_port()
        self.debug_port = free_port()
        self.backend = backend
        self.postgresql_url = postgresql_url
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        proc = self._proc.proc if self._proc is not None else None
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> FerretService:
        if self.backend == "postgresql":
            store = ["--handler=postgresql", f"--postgresql-url={self.postgresql_url}"]
        else:
            data = self.base_dir / "data"
            data.mkdir(parents=True, exist_ok=True)
            store = ["--handler=sqlite", f"--sqlite-url=file:{data}/"]
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._proc = ManagedProcess("ferretdb", [
            str(ensure_binary()), *store,
            f"--listen-addr=127.0.0.1:{self.port}", f"--debug-addr=127.0.0.1:{self.debug_port}",
            f"--state-dir={self.base_dir}", "--telemetry=disable", "--log-level=warn",
        ], self.base_dir / "ferretdb.log")
        proc = self._proc.spawn()
        wait_until(lambda: port_open(self.port), 30, "ferretdb", proc, self.base_dir / "ferretdb.log")
        return self
