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
        delay = 0.5
        while True:
            try:
                await body()
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background loop %s failed; restarting in %.1fs", name, delay)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, backoff_max_s)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("background task %s failed", task.get_name(), exc_info=exc)

    async def close(self, timeout: float = 10.0) -> None:
        self._closing = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def __len__(self) -> int:
        return len(self._tasks)
