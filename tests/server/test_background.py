"""Restart backoff of supervised loops."""

from __future__ import annotations

import asyncio

from chatcore.background import Backoff, Supervisor


def test_backoff_doubles_while_failures_follow_each_other_and_starts_over_after_a_healthy_run() -> None:
    b = Backoff(max_s=4.0, healthy_s=60.0)
    assert [b.failed(ran_s=0.1) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert b.failed(ran_s=3600.0) == 0.5  # it had run fine for an hour
    assert b.failed(ran_s=0.1) == 1.0
    b.reset()
    assert b.failed(ran_s=0.1) == 0.5
    assert Backoff(max_s=0.1).failed(ran_s=0.0) == 0.1  # never longer than the cap


async def test_a_failing_loop_is_restarted_and_cancelled_at_close() -> None:
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("boom")
        await asyncio.sleep(3600)

    sup = Supervisor("test")
    task = sup.loop("flaky", body, backoff_max_s=0.1)
    for _ in range(100):
        if runs >= 3:
            break
        await asyncio.sleep(0.05)
    assert runs == 3 and not task.done()
    await sup.close()
    assert task.cancelled()


async def test_close_ends_a_loop_whose_first_cancellation_was_swallowed() -> None:
    swallowed = False

    async def body() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)  # a library call, in flight when the cancellation comes
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed = True  # as a call that completed just as it was cancelled

    sup = Supervisor("test")
    task = sup.loop("swallows-once", body)
    await asyncio.sleep(0.05)
    await sup.close(timeout=3)
    assert swallowed and task.done()
