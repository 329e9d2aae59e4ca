"""Delivery statuses only move forward; failed is terminal and only reachable before delivery."""

from __future__ import annotations

import itertools

import pytest

from whatsapp_bridge.models import STATUS_RANK, status_advances

ORDER = ["queued", "sent", "delivered", "read"]


@pytest.mark.parametrize(("current", "new"), list(itertools.combinations(ORDER, 2)))
def test_every_forward_step_advances(current: str, new: str) -> None:
    assert status_advances(current, new)


@pytest.mark.parametrize(("current", "new"), [(b, a) for a, b in itertools.combinations(ORDER, 2)])
def test_no_backward_step_advances(current: str, new: str) -> None:
    assert not status_advances(current, new)  # e.g. a late "delivered" after "read"


@pytest.mark.parametrize("status", [*ORDER, "failed"])
def test_a_repeated_status_does_not_advance(status: str) -> None:
    assert not status_advances(status, status)


def test_failed_only_from_queued_or_sent() -> None:
    assert status_advances("queued", "failed") and status_advances("sent", "failed")
    assert not status_advances("delivered", "failed") and not status_advances("read", "failed")


@pytest.mark.parametrize("new", [*ORDER])
def test_failed_is_terminal(new: str) -> None:
    assert not status_advances("failed", new)


def test_unknown_statuses_and_inbound_rows_never_advance() -> None:
    assert not status_advances("sent", "deleted") and not status_advances("warning", "read")
    assert not status_advances("received", "read")  # inbound rows have no delivery status


def test_status_rank_is_the_documented_order() -> None:
    assert STATUS_RANK == {"queued": 0, "sent": 1, "delivered": 2, "read": 3}
