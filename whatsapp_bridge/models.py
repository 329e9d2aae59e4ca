"""Typed records parsed from webhooks, and the order in which delivery statuses may move.

``webhook.parse_webhook`` builds these; chat-server stores them (``wa_messages``) and shows them
to staff. Everything here is plain data: timestamps are timezone-aware UTC, ``meta`` holds only
JSON values (it is copied from the webhook body), so a record can be stored as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# An outbound message's status only moves forward: Meta may deliver the webhooks out of order
# (a "delivered" after its "read"), and a late one must not undo a newer state.
STATUS_RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3}
# "failed" ends a message that never reached the phone. Once delivered it cannot fail any more.
FAILED = "failed"
_FAILABLE = frozenset({"queued", "sent"})


def status_advances(current: str, new: str) -> bool:
    """Whether a message in ``current`` may move to ``new``.

    Unknown statuses (and ``received``, which marks inbound rows) never advance, so a status
    Meta adds later is ignored rather than stored over a known one.
    """
    if new == FAILED:
        return current in _FAILABLE
    if current not in STATUS_RANK or new not in STATUS_RANK:
        return False
    return STATUS_RANK[new] > STATUS_RANK[current]


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message a contact sent to a business number."""

    phone_number_id: str  # the business number it was sent to (metadata.phone_number_id)
    wa_id: str | None  # the sender's number, digits only (``from``); None when only a BSUID came
    contact_name: str | None  # contacts[].profile.name; absent for some types and in some regions
    wamid: str  # Meta's message id: the idempotency key for webhook retries and replays
    timestamp: datetime
    type: str  # Meta's type: text, image, location, interactive, ...
    text: str  # the body of a text message, a readable placeholder for anything else
    meta: dict[str, Any] = field(default_factory=dict)  # media ids, mime types, reply ids, context
    # the business-scoped user id (``from_user_id``, 2026 payloads): stable across the user's
    # number changes, and the only id of a user who hides their number behind a username
    bsuid: str | None = None
    # a linked device's file message: the serialized waE2E.Message whatsmeow downloads it from
    # (its media key included, so it is kept with the fetch queue and never in ``meta``)
    media_payload: bytes | None = None

    @property
    def sender(self) -> str:
        """The address replies go to: the number when known, else the BSUID."""
        return self.wa_id or self.bsuid or ""


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery status of a message the business sent."""

    phone_number_id: str
    wamid: str
    status: str  # sent | delivered | read | failed (others are passed through and never advance)
    timestamp: datetime
    recipient_id: str | None
    error_code: int | None = None
    error_title: str | None = None
    error_details: str | None = None  # errors[].error_data.details: the human explanation


@dataclass(frozen=True, slots=True)
class WebhookBatch:
    """Everything one webhook POST carried, across all its entries and changes."""

    messages: list[InboundMessage]
    statuses: list[StatusUpdate]
    errors: list[dict[str, Any]]  # value-level errors[] (Meta could not process something)
