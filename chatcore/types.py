"""Shared type aliases."""

from __future__ import annotations

from typing import Any, Literal, NewType

UserId = NewType("UserId", int)
RoomId = NewType("RoomId", int)
MessageId = NewType("MessageId", int)

Role = Literal["user", "staff", "supervisor", "admin"]
RoomKind = Literal["public", "private", "direct", "whatsapp"]
AuthorKind = Literal["user", "assistant", "contact", "system"]

JSON = dict[str, Any]

# in rising order: a supervisor does what staff do plus manage the desk's shared things (every
# conversation, shared canned replies); only admins change roles, accounts and permissions
ROLES: tuple[Role, ...] = ("user", "staff", "supervisor", "admin")
STAFF_ROLES: frozenset[str] = frozenset({"staff", "supervisor", "admin"})
DESK_MANAGER_ROLES: frozenset[str] = frozenset({"supervisor", "admin"})

ID_MAX = 2**63 - 1  # ids and seqs are PostgreSQL bigints: a larger number names nothing
