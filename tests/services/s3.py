"""A real S3-compatible server for the S3 file-store tests: versitygw (Versity S3 Gateway) on its
posix backend, built by ``scripts/fetch-s3.sh`` into the test cache. Objects live as plain files
under a temporary directory; their metadata in a sidecar directory (no extended attributes needed
on the test machine's filesystem)."""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from pathlib import Path

from .base import CACHE_DIR, REPO_ROOT, ManagedProcess, Service, free_port, port_open, wait_until

BINARY = CACHE_DIR / "bin" / "versitygw"


def ensure_binary() -> Path:
    if not BINARY.exists():
        subprocess.run([str(REPO_ROOT / "scripts" / "fetch-s3.sh")], check=True)
    return BINARY


class S3Service(Service):
    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="chat-s3-"))
        self.port = port or free_port()
        self.access_key = "chat-test-" + secrets.token_hex(4)
        self.secret_key = secrets.token_urlsafe(24)
        self.region = "us-east-1"
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Service:
        root, sidecar = self.base_dir / "root", self.base_dir / "meta"
        root.mkdir(parents=True, exist_ok=True)
        sidecar.mkdir(parents=True, exist_ok=True)
        self._proc = ManagedProcess("versitygw", [
            str(ensure_binary()), "--port", f"127.0.0.1:{self.port}", "--access", self.access_key,
            "--secret", self.secret_key, "--region", self.region, "posix", "--sidecar", str(sidecar), str(root),
        ], self.base_dir / "versitygw.log")
        proc = self._proc.spawn()
        wait_until(lambda: port_open(self.port), 30, "versitygw", proc, self.base_dir / "versitygw.log")
        return self

    def objects(self, bucket: str) -> list[str]:
        """The object keys stored in ``bucket``, read from the gateway's directory (what is
        really there, not what the API says)."""
        d = self.base_dir / "root" / bucket
        return sorted(p.name for p in d.iterdir() if p.is_file()) if d.exists() else []
