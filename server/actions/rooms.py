"""Rooms: creation, permissioned access, membership, direct messages, read cursors.

Visibility (the rule is ``chatcore.access``, shared with chat-archive): public rooms are
readable by every user and writable by members; private and direct rooms exist only for their
members (others get ``not_found``, which does not reveal that the room exists), except for the
history reads of a user holding the audited compliance permission; WhatsApp conversation rooms
belong to staff.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from chatcore.access import STAFF_KINDS, Principal, RoomFacts, can_read_room, can_write_room, reads_through_compliance
from chatcore.errors import Archived, Conflict, Forbidden, Invalid, NotFound
from chatcore.events import MemberEvent, iso
from chatcore.types import DESK_MANAGER_ROLES, ID_MAX, STAFF_ROLES

from ..files.service import signed_wire
from ..storage import access as adb
from ..storage import mentions as mentions_db
from ..storage import messages as mdb
from ..storage import queues as queues_db
from ..storage import receipts as rcdb
from ..storage import rooms as db
from ..storage import users as udb
from . import audit
from .account import avatar_url, public_user
from .audit import record_compliance_read
from .notify import emit, enter_channel, leave_channel, room_channel, user_channel
from .receipts import receipts_enabled, receipts_of

if TYPE_CHECKING:
    from ..context import Services

ROOM_NAME_MAX = 80
TOPIC_MAX = 300
JOIN_PAGE = 50
CREATABLE_KINDS = ("public", "private")
# GET /rooms pages: every public room is listed to every user, so an unpaged list grows with
# the whole server and computes an unread count per row
ROOMS_PAGE_DEFAULT = 100
ROOMS_PAGE_MAX = 200


def check_room_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > ROOM_NAME_MAX:
        raise Invalid(f"name must be 1-{ROOM_NAME_MAX} characters", field="name")
    return name.strip()


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "room"
    return f"{slug}-{secrets.token_hex(3)}"


def is_staff(user: udb.User) -> bool:
    return user.role in STAFF_ROLES


def _is_id(value: Any) -> bool:
    # bool is an int in Python: JSON true must not become user or room 1
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_room_id(room_id: Any) -> int:
    if not isinstance(room_id, int) or isinstance(room_id, bool) or not 0 < room_id <= ID_MAX:
        raise Invalid("room_id must be a positive integer", field="room_id")
    return room_id


def principal_of(user: udb.User) -> Principal:
    return Principal(user.id, user.role, user.compliance)


async def access_room_by_id(svc: Services, user: udb.User, room_id: Any, *, write: bool = False,
                            compliance: str | None = None) -> db.Room:
    """The room if ``user`` may read it (or write to it with ``write``); raises otherwise.

    The rule is ``chatcore.access``, shared with chat-archive. ``compliance`` names a read that
    may use the compliance permission (history, not joining or live delivery); such a read is
    audited. The permission is read from the user's row here, not from ``user``: a socket
    keeps the user it connected with, and a revocation must hold on its next request."""
    room_id = check_room_id(room_id)
    room, member = await db.get_room_for_user(svc.pool, room_id, user.id)
    if room is None:
        raise NotFound("room not found")
    # staff (not supervisors or admins) read a WhatsApp room only within their queues
    in_queues = (room.kind not in STAFF_KINDS or user.role in DESK_MANAGER_ROLES
                 or await queues_db.conversation_visible(svc.pool, room.id, user.id))
    facts = RoomFacts(room.id, room.kind, member, in_queues)
    principal = Principal(user.id, user.role)
    if can_read_room(principal, facts):
        if write and not can_write_room(principal, facts):
            raise Forbidden("join the room first")
        if write and room.archived_at is not None:
            raise Archived("this room is archived: it is read-only")
        return room
    if compliance is not None and not write:
        principal = Principal(user.id, user.role, await udb.has_compliance(svc.pool, user.id))
        if reads_through_compliance(principal, facts):
            await record_compliance_read(svc, user.id, [room.id], compliance)
            return room
    raise NotFound("room not found")


ACCESS_ROOMS_MAX = 1000  # room ids per access question (chat-archive asks once per request)


@dataclass(frozen=True, slots=True)
class ArchivePurpose:
    """What chat-archive's request is for (``audit.ARCHIVE_ACTIONS``), its parameters, and who
    asked from where."""

    action: str
    params: dict[str, Any]
    actor: audit.Actor


async def room_access_facts(svc: Services, user: udb.User, room_ids: Any,
                            purpose: ArchivePurpose | None = None) -> list[RoomFacts]:
    """The facts of the rooms of ``room_ids`` that ``user`` may read, for chat-archive's check.

    Rooms the user may not read are left out, like rooms that do not exist: asking reveals no
    more than the rest of the API does. Rooms readable only through the compliance permission
    are audited, one row for the whole question. A staff member's archive request (``purpose``)
    is audited too, one row naming the action, its parameters and the rooms it may read,
    written before the answer leaves: no answer without its row."""
    if (not isinstance(room_ids, list) or len(room_ids) > ACCESS_ROOMS_MAX
            or not all(_is_id(r) for r in room_ids)):
        raise Invalid(f"room_ids must be a list of at most {ACCESS_ROOMS_MAX} room ids", field="room_ids")
    principal = principal_of(user)
    facts = [f for f in await adb.room_facts(svc.pool, list(dict.fromkeys(room_ids)), user.id)
             if can_read_room(principal, f)] if room_ids else []
    audited = [f.id for f in facts if reads_through_compliance(principal, f)]
    if audited:
        await record_compliance_read(svc, user.id, audited, "archive")
    if purpose is not None and user.role in STAFF_ROLES and (purpose.action != audit.RETENTION or user.role == "admin"):
        ids = [f.id for f in facts]
        async with svc.pool.acquire() as conn:
            await audit.record(conn, purpose.actor, purpose.action, "room", ids[0] if len(ids) == 1 else None, {
                "via": "archive", "params": purpose.params, "rooms": len(ids),
                "room_ids": ids[:audit.AUDITED_ROOM_IDS_MAX]})
    return facts


async def do_create_room(
    svc: Services, user: udb.User, name: Any, kind: Any, topic: Any = "", member_ids: Any = None
) -> db.Room:
    name = check_room_name(name)
    if kind not in CREATABLE_KINDS:
        raise Invalid("kind must be 'public' or 'private' (use /dms for direct messages)", field="kind")
    topic = topic or ""
    if not isinstance(topic, str) or len(topic) > TOPIC_MAX:
        raise Invalid(f"topic must be at most {TOPIC_MAX} characters", field="topic")
    invited = _check_user_ids(member_ids)
    # counted in Redis on every hit, like the login limits: creations are rare, and each room
    # stays in every user's room list (public) or its members' lists (private) for good
    await svc.limiter.hit("rooms", str(user.id), svc.config.limits.rooms_per_hour, 3600)
    async with svc.pool.acquire() as conn, conn.transaction():
        room = await db.insert_room(conn, _slugify(name), name, kind, topic, user.id)
        await db.add_member(conn, room.id, user.id, "owner")
        for uid in invited:
            if uid != user.id:
                await _add_existing_user(conn, room.id, uid)
    for uid in {user.id, *invited}:
        await enter_channel(svc, uid, room_channel(room.id))
    return room


async def do_list_rooms(svc: Services, user: udb.User, after_id: int | None, limit: int | None) -> dict[str, Any]:
    """One page of the user's room list, by room id: ``{rooms, has_more, next_cursor}``; the
    next page is the one after ``next_cursor`` (``None`` on the last page)."""
    if after_id is not None and after_id < 0:
        raise Invalid("after_id must be a non-negative integer", field="after_id")
    if limit is not None and limit < 1:
        raise Invalid(f"limit must be 1-{ROOMS_PAGE_MAX}", field="limit")
    size = min(limit or ROOMS_PAGE_DEFAULT, ROOMS_PAGE_MAX)
    rows = await db.rooms_for_user(svc.pool, user.id, after_id or 0, size + 1)
    has_more = len(rows) > size
    rows = rows[:size]
    await _with_peer_presence(svc, rows)
    return {"rooms": rows, "has_more": has_more, "next_cursor": rows[-1]["id"] if has_more else None}


async def _with_peer_presence(svc: Services, rows: list[dict[str, Any]]) -> None:
    """Fill each direct room's ``peer`` with its presence, so a client shows every DM's status
    on load and follows the ``presence`` events from there. The assistant is always available."""
    peers = [r["peer"] for r in rows if isinstance(r.get("peer"), dict) and r["peer"].get("id") is not None]
    if not peers:
        return
    ids = list({p["id"] for p in peers})
    facts = await db.users_presence_facts(svc.pool, ids)
    try:
        online = await svc.presence.online(ids)
    except Exception:  # Redis away: the list still answers, statuses unknown
        online = {}
    for p in peers:
        kind, last_seen, avatar = facts.get(p["id"], ("human", None, None))
        p["kind"] = kind
        p["last_seen"] = iso(last_seen)
        p["avatar_url"] = avatar_url(svc, avatar)
        if kind == "assistant":
            p["status"] = "online"
        elif p["id"] in online:
            p["status"] = "online" if online[p["id"]] else "offline"
        else:
            p["status"] = None


def _check_user_ids(value: Any) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 100 or not all(_is_id(v) for v in value):
        raise Invalid("members must be a list of at most 100 user ids", field="members")
    return list(dict.fromkeys(value))


async def _add_existing_user(conn: asyncpg.Connection, room_id: int, user_id: int) -> bool:
    if await udb.get_user(conn, user_id) is None:
        raise NotFound(f"user {user_id} not found")
    return await db.add_member(conn, room_id, user_id)


async def members_view(svc: Services, room_id: int) -> list[dict[str, Any]]:
    """The room's member records as clients get them (pictures signed)."""
    out = await db.members(svc.pool, room_id)
    for m in out:
        m["avatar_url"] = avatar_url(svc, m.pop("avatar_file_id"))
    return out


async def room_view(svc: Services, room: db.Room, user: udb.User) -> dict[str, Any]:
    member_list = await db.members(svc.pool, room.id)
    return room.public(members_count=len(member_list), joined=any(m["id"] == user.id for m in member_list))


async def do_join_room(svc: Services, user: udb.User, room_id: int, sid: str | None) -> dict[str, Any]:
    room = await access_room_by_id(svc, user, room_id)
    added = False
    if room.kind == "public" and room.archived_at is None:
        added = await db.add_member(svc.pool, room.id, user.id)
    if sid is not None:
        await svc.sio.enter_room(sid, room_channel(room.id))
    if added:
        await enter_channel(svc, user.id, room_channel(room.id))
        await emit(svc, "member:joined", MemberEvent(room.id, public_user(svc, user), await _presence_of(svc, user.id)).to_wire(),
                   to=room_channel(room.id))
        await post_notice(svc, room.id, f"{user.display_name} joined", "joined", user.id, seen_by=user.id)
    member_list = await members_view(svc, room.id)
    online = await svc.presence.online([m["id"] for m in member_list])
    messages, has_more = await mdb.history(svc.pool, room.id, None, JOIN_PAGE)
    mentions, notify = await mentions_db.counts(svc.pool, room.id, user.id) or (0, "all")
    out = {
        "room": room.public(members_count=len(member_list), joined=room.kind != "whatsapp" or added),
        "members": member_list,
        "presence": {str(uid): ("online" if on else "offline") for uid, on in online.items()},
        "messages": signed_wire(svc, messages),
        "has_more": has_more or room.archived_upto_seq > 0,
        "mentions": mentions,
        "notify": notify,
    }
    if receipts_enabled(svc, room.kind, len(member_list)):
        out["read_cursors"] = await rcdb.read_cursors(svc.pool, room.id)
    return out


async def do_leave_room(svc: Services, user: udb.User, room_id: int) -> None:
    room = await access_room_by_id(svc, user, room_id)
    if room.kind == "direct":
        raise Invalid("direct conversations cannot be left")
    if room.kind == "whatsapp":
        return
    if await db.remove_member(svc.pool, room.id, user.id):
        await leave_channel(svc, user.id, room_channel(room.id))
        await emit(svc, "member:left", MemberEvent(room.id, public_user(svc, user)).to_wire(), to=room_channel(room.id))
        if room.archived_at is None:
            await post_notice(svc, room.id, f"{user.display_name} left", "left", user.id)


async def do_invite(svc: Services, user: udb.User, room_id: Any, target_id: Any) -> None:
    room = await access_room_by_id(svc, user, room_id, write=True)
    if room.kind not in ("public", "private"):
        raise Conflict("members can only be added to public and private rooms")
    if not _is_id(target_id):
        raise Invalid("user_id must be a positive integer", field="user_id")
    async with svc.pool.acquire() as conn:
        added = await _add_existing_user(conn, room.id, target_id)
        target = await udb.get_user(conn, target_id)
    if added and target is not None:
        await enter_channel(svc, target_id, room_channel(room.id))
        event = MemberEvent(room.id, public_user(svc, target), await _presence_of(svc, target_id))
        await emit(svc, "member:joined", event.to_wire(), to=room_channel(room.id))
        await emit(svc, "room:added", room.public(joined=True), to=user_channel(target_id))
        await post_notice(svc, room.id, f"{user.display_name} added {target.display_name}", "added", target_id,
                          actor_id=user.id, seen_by=user.id)


async def post_notice(svc: Services, room_id: int, body: str, notice: str, user_id: int | None = None, *,
                      actor_id: int | None = None, seen_by: int | None = None) -> None:
    """A system message that keeps a membership or settings change in the room's history
    (``meta.notice``: joined, left, added, removed, renamed, topic, archived, unarchived).
    Stored without an author, so no one can edit it; ``seen_by`` (the actor) has it read."""
    meta: dict[str, Any] = {"notice": notice}
    if user_id is not None:
        meta["user_id"] = user_id
    if actor_id is not None:
        meta["actor_id"] = actor_id
    msg = await mdb.insert_message(svc.pool, room_id, author_id=None, author_kind="system", author_name=None,
                                   body=body, meta=meta)
    svc.metrics.messages.labels("system").inc()
    if seen_by is not None:
        await db.mark_read_to(svc.pool, room_id, seen_by, msg.seq)
    await emit(svc, "message", msg.to_wire(), to=room_channel(room_id))


async def _presence_of(svc: Services, user_id: int) -> str | None:
    try:
        return "online" if (await svc.presence.online([user_id]))[user_id] else "offline"
    except Exception:  # Redis away: the event goes out without it
        return None


async def do_open_dm(svc: Services, user: udb.User, target_id: Any) -> tuple[db.Room, bool]:
    """The direct room between two users, created on first use. Returns (room, created)."""
    if not isinstance(target_id, int) or isinstance(target_id, bool) or target_id <= 0:
        raise Invalid("user_id must be a positive integer", field="user_id")
    if target_id == user.id:
        raise Invalid("cannot open a direct conversation with yourself", field="user_id")
    target = await udb.get_user(svc.pool, target_id)
    if target is None or target.kind == "contact":
        raise NotFound("user not found")
    a, b = sorted((user.id, target_id))
    slug = f"dm-{a}-{b}"
    existing = await db.get_room_by_slug(svc.pool, slug)
    if existing is not None:
        return existing, False
    try:
        async with svc.pool.acquire() as conn, conn.transaction():
            room = await db.insert_room(conn, slug, f"{user.display_name}, {target.display_name}", "direct", "", user.id)
            await db.add_member(conn, room.id, user.id)
            await db.add_member(conn, room.id, target_id)
    except asyncpg.UniqueViolationError:  # the other side opened it at the same moment
        again = await db.get_room_by_slug(svc.pool, slug)
        assert again is not None
        return again, False
    for uid in (user.id, target_id):
        await enter_channel(svc, uid, room_channel(room.id))
    await emit(svc, "room:added", room.public(joined=True), to=user_channel(target_id))
    return room, True


async def do_mark_read(svc: Services, user: udb.User, room_id: int, seq: int) -> tuple[int, int]:
    """Move the user's read cursor up to ``seq``; the cursor and the mentions still unread above
    it (those it passed are read). In rooms with read receipts the room hears of an advance
    (``actions/receipts.py``, throttled)."""
    room = await access_room_by_id(svc, user, room_id)
    moved = await rcdb.advance_read(svc.pool, room.id, user.id, seq, svc.config.read_receipts_max_members + 1)
    if moved is None:
        raise Forbidden("not a member of this room")
    if moved.advanced and receipts_enabled(svc, moved.room_kind, moved.members):
        await receipts_of(svc).advanced(room.id, user.id, moved.cursor)
    return moved.cursor, await mentions_db.mark_read(svc.pool, room.id, user.id, moved.cursor)
