"""Process management shared by the service starters."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("CHAT_TEST_CACHE", REPO_ROOT / ".cache"))


class ServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise ServiceError(f"{what} exited with {proc.returncode} while starting:\n{tail}")
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise ServiceError(f"{what} did not become ready in {timeout}s:\n{tail}")


class ManagedProcess:
    """One long-running child process with its log file; can be stopped, killed, restarted."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None, user: str | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = env
        self.user = user
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> subprocess.Popen[bytes]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            user=self.user,
            cwd=self.cwd,
            start_new_session=True,
        )
        out.close()
        return self.proc

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 15.0, sig: int | None = None) -> None:
        """``sig`` (SIGTERM by default), then SIGKILL after ``timeout`` s."""
        if self.proc is None:
            return
        self.signal(signal.SIGTERM if sig is None else sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGKILL)
        self.proc.wait(10)


class Service:
    """Lifecycle shared by the service starters: ``start()`` is theirs; stopping, killing,
    restarting on the same port and data, and removing the data are the same for all."""

    base_dir: Path
    _proc: ManagedProcess | None = None
    stop_signal: int = signal.SIGTERM  # the service's own "shut down cleanly, now"

    def start(self) -> Service:
        raise NotImplementedError

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(timeout=30, sig=self.stop_signal)

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        # Removing a service's data (PostgreSQL's per-test databases, Kafka's logs) took minutes
        # on a busy disk and held the session's last teardown past the test timeout: a detached
        # ``rm`` finishes it after the session.
        subprocess.Popen(["rm", "-rf", str(self.base_dir)], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
