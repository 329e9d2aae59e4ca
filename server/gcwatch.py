"""Garbage-collector pauses: a histogram on ``/metrics`` and a warning past a threshold.

A collection stops the event loop for as long as it runs; with many long-lived objects (open
connections) a young-generation pass can take tens of milliseconds and a full one hundreds,
which shows up as latency for every client of the node at once. ``gc.callbacks`` brackets each
collection, so the cost is two clock reads per collection.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from prometheus_client import Histogram

log = logging.getLogger(__name__)


class GcWatch:
    def __init__(self, histogram: Histogram, warn_s: float) -> None:
        self.histogram = histogram
        self.warn_s = warn_s
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        generation = info.get("generation", -1)
        self.histogram.labels(str(generation)).observe(took)
        if took >= self.warn_s:
            log.warning("gc: generation %d collection paused the loop %.0f ms (%d objects collected)",
                        generation, took * 1000, info.get("collected", 0))

    def install(self) -> GcWatch:
        if self not in gc.callbacks:
            gc.callbacks.append(self)
        return self

    def uninstall(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
