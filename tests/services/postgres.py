"""A throw-away PostgreSQL cluster from the pgserver wheel's binaries (PostgreSQL 16)."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import tempfile
from pathlib import Path

from .base import ManagedProcess, Service, ServiceError, free_port, wait_until

SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root


def _bin_dir() -> Path:
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _ensure_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/false", SYSTEM_USER], check=True, capture_output=True)
    return SYSTEM_USER


def _chmod_tree_for(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    # the server user must traverse every parent folder
    p = path.parent
    while p != p.parent:
        p.chmod(p.stat().st_mode | 0o011)
        p = p.parent


class PostgresService(Service):
    """PostgreSQL on 127.0.0.1:<free port>, trust auth, tuned for tests (no fsync)."""

    # fast shutdown: clients are disconnected, then a clean stop. SIGTERM (smart shutdown) waits
    # for every client to leave, and one left connected held each stop for its 30 s timeout
    stop_signal = signal.SIGINT

    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="chat-pg-"))
        self.data_dir = self.base_dir / "data"
        self.port = port or free_port()
        self.user = _ensure_user()
        self._proc: ManagedProcess | None = None

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresService:
        bins = _bin_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self.base_dir.mkdir(parents=True, exist_ok=True)
            _chmod_tree_for(self.base_dir, self.user)
            subprocess.run(
                [str(bins / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=utf8", "--no-sync"],
                check=True, capture_output=True, user=self.user,
            )
        self._proc = ManagedProcess(
            "postgres",
            [str(bins / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data_dir}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=300", "-c", "shared_buffers=128MB"],
            self.base_dir / "postgres.log",
            user=self.user,
        )
        proc = self._proc.spawn()
        wait_until(self._ready, 30, "postgres", proc, self._proc.log)
        return self

    def _ready(self) -> bool:
        r = subprocess.run(
            [str(_bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
            capture_output=True,
        )
        return r.returncode == 0


    def psql(self, sql: str, database: str = "postgres") -> str:
        r = subprocess.run(
            [str(_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            capture_output=True, text=True,
        )
        if r.returncode != 0:
            raise ServiceError(r.stderr)
        return r.stdout
