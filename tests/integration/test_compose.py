"""The compose file validates with Debian's docker-compose (no engine needed)."""

from __future__ import annotations

import shutil
import subprocess

from tests.services.base import REPO_ROOT


def test_compose_file_validates() -> None:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is missing: scripts/bootstrap.sh test installs Debian's docker-compose"
    r = subprocess.run([exe, "--env-file", str(REPO_ROOT / ".env.example"), "config", "-q"], cwd=REPO_ROOT,
                       capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "POSTGRES_PASSWORD": "x"})
    assert r.returncode == 0, r.stderr
    out = subprocess.run([exe, "--env-file", str(REPO_ROOT / ".env.example"), "config", "--services"], cwd=REPO_ROOT,
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "POSTGRES_PASSWORD": "x"})
    assert set(out.stdout.split()) == {"postgres", "redis", "kafka", "mongo", "chat-server-1", "chat-server-2",
                                       "chat-archive", "nginx"}
