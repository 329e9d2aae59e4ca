"""Shared type aliases."""

from __future__ import annotations

from typing import Any, Literal, NewType

UserId = NewType("UserId", int)
RoomId = NewType("RoomId", int)
MessageId = NewType("MessageId", int)

Role = Literal["user", "staff", "admin"]
RoomKind = Literal["public", "private", "direct", "whatsapp"]
AuthorKind = Literal["user", "assistant", "contact", "system"]

JSON = dict[str, Any]

ROLES: tuple[Role, ...] = ("user", "staff", "admin")
STAFF_ROLES: frozenset[str] = frozenset({"staff", "admin"})

ID_MAX = 2**63 - 1  # ids and seqs are PostgreSQL bigints: a larger number names nothing
