"""Percentiles from merged raw latency samples (nanoseconds in, milliseconds out)."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from pathlib import Path


def read_samples(paths: Iterable[Path]) -> array[int]:
    merged: array[int] = array("q")
    for path in paths:
        if path.exists():
            merged.frombytes(path.read_bytes())
    return merged


def percentiles(samples_ns: array[int]) -> dict[str, float]:
    """Nearest-rank percentiles over every sample (no histogram, no sampling)."""
    if not samples_ns:
        return {"p50_ms": 0.0, "p90_ms": 0.0, "p99_ms": 0.0, "p999_ms": 0.0, "max_ms": 0.0, "samples": 0}
    s = sorted(samples_ns)
    n = len(s)

    def at(q: float) -> float:
        return round(s[max(0, math.ceil(q * n) - 1)] / 1e6, 2)

    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "p999_ms": at(0.999),
            "max_ms": round(s[-1] / 1e6, 2), "samples": n}
