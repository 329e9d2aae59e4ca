"""Room management by its owners: rename, topic, archive, delete, remove members, member roles;
and the directory of public rooms.

Who manages: a member whose ``room_members.role`` is ``owner`` (the creator, and whoever an
owner promotes), or a server admin. Only public and private rooms are managed here (direct
rooms belong to their two people, WhatsApp rooms to the staff inbox). Others get ``forbidden``
(or ``not_found`` for a private room they cannot see).

Names: the slug (``general-3fa9c1``, fixed at creation, unique) is the room's handle; names
are display labels and may repeat, so a rename never collides.

Every change commits first, then: a system message in the room (``post_notice``) keeps it in
the history; ``room:updated`` (the room record) goes to the room's channel on every node;
a removed member gets ``member:removed`` on their own channel, and their sockets leave the
room's channel on every node (``leave_channel``), so they stop receiving its events; a
deleted room sends ``room:deleted`` to its channel and then empties it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatcore.errors import Archived, Forbidden, Invalid, NotFound
from chatcore.events import MemberEvent

from ..storage import rooms as db
from ..storage import users as udb
from . import audit
from .account import public_user
from .notify import emit, leave_channel, room_channel, user_channel
from .rooms import TOPIC_MAX, access_room_by_id, check_room_name, post_notice

ROOM_DELETED, MEMBER_REMOVED = "room.delete", "room.member_remove"

if TYPE_CHECKING:
    from ..context import Services

MANAGED_KINDS = ("public", "private")
MEMBER_ROLES = ("owner", "member")
DIRECTORY_PAGE_DEFAULT, DIRECTORY_PAGE_MAX = 30, 100


async def managed_room(svc: Services, user: udb.User, room_id: int) -> db.Room:
    """The room if ``user`` may manage it: an owner of it, or a server admin."""
    room = await access_room_by_id(svc, user, room_id)
    if room.kind not in MANAGED_KINDS:
        raise Forbidden("only public and private rooms can be managed")
    if user.role != "admin" and await db.member_role(svc.pool, room.id, user.id) != "owner":
        raise Forbidden("only the room's owners can manage it")
    return room


def check_topic(topic: Any) -> str:
    if not isinstance(topic, str) or len(topic) > TOPIC_MAX:
        raise Invalid(f"topic must be at most {TOPIC_MAX} characters", field="topic")
    return topic.strip()


async def _announce(svc: Services, room: db.Room) -> None:
    await emit(svc, "room:updated", room.public(), to=room_channel(room.id))


async def do_update_room(svc: Services, user: udb.User, room_id: int, *, name: Any = None, topic: Any = None,
                         archived: bool | None = None) -> db.Room:
    """Rename, change the topic, archive or unarchive (each optional). An archived room takes
    only unarchiving: a rename or topic change there is refused (``archived``)."""
    room = await managed_room(svc, user, room_id)
    new_name = None if name is None else check_room_name(name)
    new_topic = None if topic is None else check_topic(topic)
    if room.archived_at is not None and archived is not False and (new_name is not None or new_topic is not None):
        raise Archived("this room is archived: unarchive it to change it")
    if archived is True and room.archived_at is None:
        # the last words in the room before it goes read-only
        await post_notice(svc, room.id, f"{user.display_name} archived the room", "archived", actor_id=user.id,
                          seen_by=user.id)
    if archived is not None:
        updated = await db.set_archived(svc.pool, room.id, archived)
        if updated is None:
            raise NotFound("room not found")
        if archived is False and room.archived_at is not None:
            await post_notice(svc, room.id, f"{user.display_name} unarchived the room", "unarchived",
                              actor_id=user.id, seen_by=user.id)
        room = updated
    if new_name is not None or new_topic is not None:
        updated = await db.update_room(svc.pool, room.id, new_name, new_topic)
        if updated is None:
            raise NotFound("room not found")
        if new_name is not None and new_name != room.name:
            await post_notice(svc, room.id, f"{user.display_name} renamed the room to {new_name}", "renamed",
                              actor_id=user.id, seen_by=user.id)
        if new_topic is not None and new_topic != room.topic:
            text = f"{user.display_name} changed the topic to {new_topic}" if new_topic else \
                f"{user.display_name} cleared the topic"
            await post_notice(svc, room.id, text, "topic", actor_id=user.id, seen_by=user.id)
        room = updated
    await _announce(svc, room)
    return room


async def do_delete_room(svc: Services, actor: audit.Actor, room_id: int) -> None:
    """Delete the room, its memberships and its hot messages (their files are trashed). A server
    admin's deletion is audited (an owner's of their own room is not a staff action)."""
    user = actor.user
    room = await managed_room(svc, user, room_id)
    async with svc.pool.acquire() as conn, conn.transaction():
        members = await db.member_ids(conn, room.id)
        if not await db.delete_room(conn, room.id):
            raise NotFound("room not found")
        if user.role == "admin":
            await audit.record(conn, actor, ROOM_DELETED, "room", room.id,
                               {"name": room.name, "kind": room.kind, "members": len(members)})
    await emit(svc, "room:deleted", {"room_id": room.id}, to=room_channel(room.id))
    for uid in members:
        await leave_channel(svc, uid, room_channel(room.id))


async def do_remove_member(svc: Services, actor: audit.Actor, room_id: int, target_id: int) -> None:
    """An owner or a server admin removes a member; an admin's removal is audited."""
    user = actor.user
    room = await managed_room(svc, user, room_id)
    if target_id == user.id:
        raise Forbidden("owners leave a room with room:leave, not by removing themselves")
    role = await db.member_role(svc.pool, room.id, target_id)
    if role is None:
        raise NotFound("not a member of this room")
    if role == "owner" and user.role != "admin":
        raise Forbidden("owners are removed by a server admin (or demoted first)")
    target = await udb.get_user(svc.pool, target_id)
    async with svc.pool.acquire() as conn, conn.transaction():
        if target is None or not await db.remove_member(conn, room.id, target_id):
            raise NotFound("not a member of this room")
        if user.role == "admin":
            await audit.record(conn, actor, MEMBER_REMOVED, "room", room.id, {"user_id": target_id, "role": role})
    # their sockets leave first, so nothing sent from here on reaches them
    await leave_channel(svc, target_id, room_channel(room.id))
    await emit(svc, "member:removed", {"room_id": room.id, "user_id": target_id}, to=user_channel(target_id))
    await emit(svc, "member:left", MemberEvent(room.id, public_user(svc, target)).to_wire(), to=room_channel(room.id))
    if room.archived_at is None:
        await post_notice(svc, room.id, f"{user.display_name} removed {target.display_name}", "removed",
                          target_id, actor_id=user.id, seen_by=user.id)


async def do_set_member_role(svc: Services, user: udb.User, room_id: int, target_id: int, role: str) -> None:
    room = await managed_room(svc, user, room_id)
    if role not in MEMBER_ROLES:
        raise Invalid("role must be owner or member", field="role")
    if target_id == user.id and role != "owner" and user.role != "admin":
        raise Forbidden("owners cannot demote themselves; another owner can")
    if not await db.set_member_role(svc.pool, room.id, target_id, role):
        raise NotFound("not a member of this room")
    await _announce(svc, room)


async def do_directory(svc: Services, query: str, cursor: int | None, limit: int | None) -> dict[str, Any]:
    """A page of public rooms matching ``query``, newest first: ``{rooms, next_cursor}`` (the
    next page is ``cursor=next_cursor``; None on the last)."""
    size = min(limit or DIRECTORY_PAGE_DEFAULT, DIRECTORY_PAGE_MAX)
    rows = await db.directory(svc.pool, query.strip(), cursor, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    return {"rooms": rows, "next_cursor": rows[-1]["id"] if more else None}
