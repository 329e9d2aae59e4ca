"""A pause point for fault tests: stop a process at a named point of its work, say so through a
file, and wait there until the test kills it.

Fault tests must kill a process while work is in flight (the relay has sent a batch and not
deleted it; the consumer has written a batch and not committed it), not at a random moment. The
process is started with ``FAULT_PAUSE_AT=<point>:<n>:<file>``: the ``n``-th time it reaches
``<point>`` it writes what it holds (JSON) to ``<file>`` and waits forever; the test sees the
file, checks the state it describes, and sends SIGKILL. Unset (production), ``reach`` returns at
once. Points: ``relay.sent`` (server/relay/relay.py), ``consumer.written``
(archive/consumer.py).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson


class FaultPause:
    def __init__(self, spec: str | None) -> None:
        self.point: str | None = None
        self.nth = 0
        self.file: Path | None = None
        self._seen = 0
        if spec:
            point, nth, file = spec.split(":", 2)
            self.point, self.nth, self.file = point, int(nth), Path(file)
            if self.nth < 1 or not point or not file:
                raise ValueError("FAULT_PAUSE_AT must be <point>:<n >= 1>:<file>")

    async def reach(self, point: str, state: dict[str, Any]) -> None:
        if point != self.point or self.file is None:
            return
        self._seen += 1
        if self._seen != self.nth:
            return
        tmp = self.file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"point": point, "pid": os.getpid(), **state}))
        tmp.replace(self.file)  # the test never reads half a file
        await asyncio.Event().wait()


def parse_fault_pause(raw: str | None) -> str | None:
    """The checked ``FAULT_PAUSE_AT`` value (for the configs), or None."""
    if raw:
        FaultPause(raw)
    return raw or None
