"""Supervised background work.

Every loop (presence heartbeat and sweeper, archive relay, AI jobs, WhatsApp sender) starts
through ``Supervisor``: it names the task, logs failures, restarts loops with capped
exponential backoff, and cancels and awaits everything at shutdown. Cancellation always
propagates.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Backoff:
    """Waits between restarts: 0.5 s, doubling up to ``max_s`` while failures follow each other,
    back to 0.5 s after a run that lasted ``healthy_s`` (a loop that ran fine for an hour restarts
    at once, not after the backoff of an outage long ago)."""

    FIRST_S = 0.5

    def __init__(self, max_s: float, healthy_s: float = 60.0) -> None:
        self.max_s = max_s
        self.healthy_s = healthy_s
        self._next = min(self.FIRST_S, max_s)

    def reset(self) -> None:
        self._next = min(self.FIRST_S, self.max_s)

    def failed(self, ran_s: float) -> float:
        """The wait before the next run, for a run that failed after ``ran_s`` seconds."""
        if ran_s >= self.healthy_s:
            self.reset()
        delay = self._next
        self._next = min(self._next * 2, self.max_s)
        return delay


RECANCEL_S = 0.2  # Supervisor.close cancels a task that is still running again after this long


class Supervisor:
    def __init__(self, name: str = "app") -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run one job; failures are logged, never silently dropped."""
        if self._closing:
            coro.close()
            raise RuntimeError("supervisor is closing")
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def loop(self, name: str, body: Callable[[], Awaitable[None]], *, backoff_max_s: float = 30.0) -> asyncio.Task[Any]:
        """Run ``body`` forever; restart it with capped backoff when it fails."""
        return self.spawn(name, self._run_loop(name, body, backoff_max_s))

    async def _run_loop(self, name: str, body: Callable[[], Awaitable[None]], backoff_max_s: float) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(backoff_max_s)
        while True:
            started = loop.time()
            try:
                await body()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = backoff.failed(ran_s=loop.time() - started)
                log.exception("background loop %s failed; restarting in %.1fs", name, delay)
                await asyncio.sleep(delay * (0.5 + random.random()))

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("background task %s failed", task.get_name(), exc_info=exc)

    async def close(self, timeout: float = 10.0) -> None:
        """Cancel every task and wait for them, at most ``timeout`` s. A task still running is
        cancelled again every ``RECANCEL_S``: a cancellation that arrives while a library call
        ends may be swallowed by it (``asyncio.wait_for`` before Python 3.12 returns the result
        of an inner call that completed as it was cancelled), and the loop then went on to its
        next sleep, holding a node's stop for the whole timeout."""
        self._closing = True
        pending = set(self._tasks)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while pending and (left := deadline - loop.time()) > 0:
            for t in pending:
                t.cancel()
            _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_S, left))

    def __len__(self) -> int:
        return len(self._tasks)
