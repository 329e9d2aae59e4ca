"""Garbage-collector pauses reach the histogram, and long ones the log."""

from __future__ import annotations

import gc
import logging

import pytest

from server.gcwatch import GcWatch
from server.metrics import Metrics


def test_every_collection_is_timed_and_long_ones_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    watch = GcWatch(metrics.gc_pause, warn_s=0.0).install()  # every pause counts as long here
    try:
        with caplog.at_level(logging.WARNING, logger="server.gcwatch"):
            gc.collect(2)
            gc.collect(0)
    finally:
        watch.uninstall()
    assert watch not in gc.callbacks
    assert metrics.registry.get_sample_value("chat_gc_pause_seconds_count", {"generation": "2"}) == 1
    assert metrics.registry.get_sample_value("chat_gc_pause_seconds_count", {"generation": "0"}) == 1
    assert any("generation 2 collection paused the loop" in r.getMessage() for r in caplog.records)
    assert b"chat_gc_pause_seconds_bucket" in metrics.render()
