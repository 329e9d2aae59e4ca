"""Typed records parsed from webhooks, and the delivery status order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# A status only moves forward. "failed" ends a message that was never delivered.
STATUS_RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3}


def status_advances(current: str, new: str) -> bool:
    if current == new or current in ("failed", "received"):
        return False
    if new == "failed":
        return current in ("queued", "sent")
    if new not in STATUS_RANK or current not in STATUS_RANK:
        return False
    return STATUS_RANK[new] > STATUS_RANK[current]


@dataclass(frozen=True, slots=True)
class InboundMessage:
    phone_number_id: str
    wa_id: str
    contact_name: str | None
    wamid: str
    timestamp: datetime
    type: str
    text: str  # the body of a text message, a readable placeholder for anything else
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    phone_number_id: str
    wamid: str
    status: str
    timestamp: datetime
    recipient_id: str | None
    error_code: int | None = None
    error_title: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookBatch:
    messages: list[InboundMessage]
    statuses: list[StatusUpdate]
    errors: list[dict[str, Any]]
