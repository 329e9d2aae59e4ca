"""The one rule for who may read or write a room, shared by chat-server and chat-archive.

chat-server applies it to live history (``server/actions/rooms.py: access_room_by_id``);
chat-archive applies it to the archive, on facts it gets from chat-server for each request
(``POST /api/v1/access/rooms``). Both import it from here, so the archive cannot drift into
a looser rule than the live store (it used to let every staff token read every room).

The rule:

- a WhatsApp conversation room (``whatsapp``) is readable by supervisors and admins
  (``DESK_MANAGER_ROLES``), and by staff when it is in one of their queues, assigned to them, or
  in no queue (``RoomFacts.in_queues``, computed by chat-server); by nobody else;
- a member reads the other rooms they belong to;
- a public room is readable by every user;
- a private room or a direct conversation (``private``, ``direct``) is readable only by its
  members, or by a user holding the explicit compliance permission (granted by an admin,
  audited, and every read through it audited);
- writing needs membership, except in WhatsApp rooms, where the staff who may read them
  write; compliance never grants writing.

The service identity (``SERVICE_ROLE``) is not a user: chat-server signs short tokens with it
for its own history reads from the archive, after it applied this rule itself. No user row can
carry it (``users.role`` is checked to user/staff/supervisor/admin), so chat-server refuses it as a user.
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import DESK_MANAGER_ROLES, STAFF_ROLES

SERVICE_ROLE = "service"
SERVICE_USER_ID = 0  # no user has id 0 (ids are identity columns from 1)

MEMBERS_ONLY_KINDS: frozenset[str] = frozenset({"private", "direct"})
STAFF_KINDS: frozenset[str] = frozenset({"whatsapp"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asks: the user's current standing (role and permission as stored now, not as a token says)."""

    user_id: int
    role: str
    compliance: bool = False


@dataclass(frozen=True, slots=True)
class RoomFacts:
    """What the rule needs to know about a room, for one principal."""

    id: int
    kind: str
    member: bool
    # WhatsApp rooms: the conversation is in one of the principal's queues, assigned to them or
    # in no queue (docs/DESK.md); other rooms ignore it. chat-archive gets only the rooms
    # chat-server found readable, so its default (true) cannot widen the rule there.
    in_queues: bool = True


def _desk_reads(principal: Principal, room: RoomFacts) -> bool:
    # staff only, membership aside: a demoted staff user loses these rooms with the role, and a
    # staff member (not a supervisor or admin) those outside their queues
    return principal.role in DESK_MANAGER_ROLES or (principal.role in STAFF_ROLES and room.in_queues)


def _readable_without_compliance(principal: Principal, room: RoomFacts) -> bool:
    if room.kind in STAFF_KINDS:
        return _desk_reads(principal, room)
    return room.member or room.kind == "public"  # private, direct and unknown kinds: members only


def can_read_room(principal: Principal, room: RoomFacts) -> bool:
    """Whether ``principal`` may read ``room``'s messages (live history or archive)."""
    if _readable_without_compliance(principal, room):
        return True
    return principal.compliance and room.kind in MEMBERS_ONLY_KINDS


def reads_through_compliance(principal: Principal, room: RoomFacts) -> bool:
    """Whether a read of ``room`` is allowed only by the compliance permission (and so is audited)."""
    return can_read_room(principal, room) and not _readable_without_compliance(principal, room)


def can_write_room(principal: Principal, room: RoomFacts) -> bool:
    """Whether ``principal`` may post in ``room``: members, and staff in WhatsApp rooms."""
    if room.kind in STAFF_KINDS:
        return _desk_reads(principal, room)
    return room.member
